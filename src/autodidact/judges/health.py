"""Judge health, read by the loop after each judging stage.

`failure_error`: when more than `judge.max_failed_share` of the judgments
failed, the iteration must not train on what is left (a judge that fails on
most items is broken, and the survivors are a biased sample); the error names
how many failed, the most common reasons, and what to change.

`judge_stats`: the diagnostic figures a judging returned (`JudgeResult.stats`:
position consistency, vote margin, timeouts...), made safe to store as metrics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeResult
from autodidact.records import Judgment


def failure_error(iteration: int, judgments: Sequence[Judgment], max_failed_share: float) -> AutodidactError | None:
    """The error that stops the run when too many judgments failed, else None."""
    failed = [j for j in judgments if j.score is None]
    if not judgments or len(failed) <= max_failed_share * len(judgments):
        return None
    reasons = Counter(" ".join((j.error or "no reason given").split())[:120] for j in failed)
    common = "; ".join(f"'{reason}' ({count})" for reason, count in reasons.most_common(3))
    return AutodidactError(
        f"iteration {iteration}: {len(failed)} of {len(judgments)} training judgments failed "
        f"({len(failed) / len(judgments):.0%} > judge.max_failed_share={max_failed_share:g}), so nothing is "
        f"trained on the rest. Most common reasons: {common}. Fix the judge (judge.method, judge.mode, "
        "judge.model or its server, judge.program), or raise judge.max_failed_share to train on the judgments "
        "that succeeded."
    )


def judge_stats(result: JudgeResult) -> dict[str, float | None]:
    """A judging's `stats` as metric values: NaN and inf become None (a store column cannot hold them)."""
    out: dict[str, float | None] = {}
    for name, value in result.stats.items():
        number = None if value is None else float(value)
        out[str(name)] = number if number is not None and math.isfinite(number) else None
    return out


__all__ = ["failure_error", "judge_stats"]
