"""Between iterations: human-judge agreement from the ratings so far, a stop when it is too low, the pause message."""

from __future__ import annotations

from pathlib import Path

from autodidact.config import ReviewConfig
from autodidact.records import Alert
from autodidact.review.agreement import update_agreement
from autodidact.store import RunStore
from autodidact.tracking import Tracker, agreement_snapshot, send_agreement


def agreement_stop(store: RunStore, r: ReviewConfig, tracker: Tracker | None = None) -> str | None:
    """Update every checkpoint's agreement and send the figures that changed to `tracker`; a stop reason (and a
    stored `reliability` alert) when the latest measured one is below `review.min_agreement`, else None."""
    before = agreement_snapshot(store)
    agreement = {c: update_agreement(store, c, r.min_ratings).get("human_agreement") for c in before}
    if tracker is not None:  # the iteration's own record went out before these ratings existed
        send_agreement(tracker, store, before)
    measured = [(c, a) for c, a in agreement.items() if a is not None]
    if r.min_agreement is None or not measured or measured[-1][1] >= r.min_agreement:
        return None
    c, value = measured[-1]
    message = (
        f"human-judge agreement at the iteration-{c} checkpoint is {value:.2f}, below review.min_agreement "
        f"{r.min_agreement:g}: the self-judge no longer tracks human judgment."
    )
    if not any(a.monitor == "reliability" for a in store.alerts(c)):
        with store.transaction():
            store.add_alerts([Alert(c, "reliability", message, stop=True)])
    return message


def pause_message(store: RunStore, run_dir: Path) -> str:
    """What a paused run tells the user to do."""
    pending = len(store.review_items(pending=True))
    return (
        f"{pending} item(s) of a human validation checkpoint wait for ratings (review.pause is set). "
        f"Rate them with `autodidact review {run_dir}`, then continue with `autodidact resume {run_dir}`."
    )
