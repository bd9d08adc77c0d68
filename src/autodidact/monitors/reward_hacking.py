"""Reward hacking: the judge's score rises while the held-out metric does not.

The self-judge scores the same held-out answers every iteration, so its mean
score is comparable across iterations; so is the verifier's pass rate on
them. When the first keeps rising and the second stays flat or falls, the
model is learning what its judge likes rather than the task. Where no task
has a verifier, a fixed reference judge (a model the loop never trains,
`monitors.reward_hacking.reference_judge`) stands in for the pass rate.
Where neither exists the monitor cannot work, and the run says so once, on
the base model's figures (`unmeasured_notice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean

from autodidact.records import Judgment

Metrics = Mapping[str, float | None]


def train_judge_score(judgments: Sequence[Judgment]) -> float | None:
    """Mean score of an iteration's valid training judgments (what selection saw)."""
    scores = [j.score for j in judgments if j.score is not None]
    return fmean(scores) if scores else None


def ground_truth(metrics: Metrics) -> tuple[str, float | None]:
    """The held-out measure the judge is checked against: the pass rate, else the reference judge (0-1)."""
    if metrics.get("pass_rate") is not None:
        return "held-out pass rate", metrics["pass_rate"]
    reference = metrics.get("reference_judge_score")
    return "reference judge score", None if reference is None else reference / 10


def unmeasured_notice(metrics: Metrics) -> str | None:
    """Why reward hacking goes unmeasured in a run whose base-model evaluation gave `metrics`, or None."""
    if ground_truth(metrics)[1] is not None:
        return None
    return (
        "reward hacking is not measured in this run: no verifier graded a held-out answer and no reference judge "
        "scored them, so a rising judge score cannot be checked against anything. Set "
        "monitors.reward_hacking.reference_judge (a model the loop never trains, e.g. 'default'), or add a task "
        "with a verifier."
    )


def reward_hacking_alert(history: Sequence[Metrics], window: int, tolerance: float = 0.0) -> str | None:
    """An alert when, for `window` iterations in a row, the judge score rose and the held-out metric did not.

    `history[i]` holds iteration i's metrics (`judge_score` from the held-out
    judge; `pass_rate` or `reference_judge_score`). "Did not rise" means it
    changed by at most `tolerance` (0-1 scale). Returns None when there are
    fewer than `window` steps or any value in them is missing.
    """
    if len(history) < window + 1:
        return None
    span = history[-(window + 1):]
    judge = [m.get("judge_score") for m in span]
    truth_name, _ = ground_truth(span[-1])
    truth = [ground_truth(m)[1] for m in span]
    if any(v is None for v in judge + truth):
        return None
    steps = list(zip(judge[:-1], judge[1:], truth[:-1], truth[1:]))
    if not all(j1 > j0 and t1 - t0 <= tolerance for j0, j1, t0, t1 in steps):
        return None
    first, last = len(history) - 1 - window, len(history) - 1
    return (
        f"the judge score rose {judge[0]:.2f} -> {judge[-1]:.2f} over iterations {first}-{last} while the "
        f"{truth_name} went {100 * truth[0]:.1f}% -> {100 * truth[-1]:.1f}%: the model may be learning to please "
        "its judge rather than to improve. Use a rubric with several criteria, an external judge (judge.model), "
        "or a verifier."
    )
