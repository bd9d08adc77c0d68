"""Human validation checkpoints: queue judged items, collect a person's ratings, track agreement with the judge.

`build_checkpoint` picks the items (the loop stores them); `autodidact review RUN_DIR`
collects ratings in a browser (`app`), a terminal (`terminal`) or from a file
(`importer`); `agreement` measures how well the judge matches the person.
The web app is imported lazily (`autodidact.apps.review.app`) so the loop does not load FastAPI;
`guard` decides who may use it (loopback, or anyone with the token) and keeps its responses script-free.
"""

from autodidact.review.agreement import agreement, check_rating, update_agreement
from autodidact.review.importer import import_ratings
from autodidact.review.queue import build_checkpoint

__all__ = [
    "agreement", "build_checkpoint", "check_rating", "import_ratings", "update_agreement",
]
