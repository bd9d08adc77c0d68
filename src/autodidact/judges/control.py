"""The control arm: a random score per sample, so selection keeps a uniformly random sample per prompt.

With `selection.top_k: 1` and no `min_score`, `judge.method: random` trains on
one uniformly random valid sample of every prompt (failed or empty samples
and exact repeats are dropped by selection as for any judge): the same
prompts, samples and training as a judged run, with the judgment replaced by
chance. The difference between a judged run and this one on the same seed
is what self-evaluation adds over training on the model's own samples
(`benchmarks/study.py` reports it). It costs no model pass.

The score is a hash of the sample id, not a draw from a global generator, so
a resumed or sharded run scores every sample exactly as an unbroken one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment


def uniform_score(sample_id: str, salt: str = "random-judge") -> float:
    """A score in [0, 10), uniform over sample ids and fixed for each one."""
    digest = hashlib.sha256(f"{salt}:{sample_id}".encode()).digest()
    return 10.0 * int.from_bytes(digest[:8], "big") / 2**64


class RandomJudge:
    """Scores each sample uniformly at random in [0, 10); never fails."""

    name = "random"
    # A random score of one held-out answer says nothing: as for the relative judges, the loop scores
    # held-out answers with the direct judge, so the monitors read a real judgment.
    relative = True

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One judgment per item; no statistics."""
        return JudgeResult([Judgment(i.sample_id, self.name, uniform_score(i.sample_id), raw="random") for i in items])
