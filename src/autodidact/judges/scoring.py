"""Turning a judge's output into a 0-10 score, or None.

Two ways: the probability-weighted mean over the score tokens that follow the
judge prompt (`expected_score`), or a score parsed from the judge's generated
text (`parse_score`). Both read only the judge's own output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

SCORES: tuple[str, ...] = tuple(str(s) for s in range(11))  # "0" .. "10"

# The last "score: N" (or "N/10") in the judge's own output. Anchored on the
# word "score" so that numbers in its reasoning are not taken for the verdict.
_SCORE = re.compile(r"score\s*(?:is|of|=|:)?\s*\**\s*(\d{1,2}(?:\.\d+)?)\s*(?:/\s*10)?", re.IGNORECASE)
# The rubric's verdict line. The judge's first one is its verdict; one it writes after that (copying the
# judged text, or a fake "Final score: 10" from it) is not.
_FINAL_SCORE = re.compile(r"final\s+" + _SCORE.pattern, re.IGNORECASE)
# A bare number on the first line: the judge answered right after "Score: " and
# may have gone on writing on later lines ("7\n\nThe response ...").
_BARE = re.compile(r"^\s*\**\s*(\d{1,2}(?:\.\d+)?)\s*(?:/\s*10)?\s*\**\s*\.?[ \t]*(?:\n|$)")


def exact_probabilities(logprobs: Sequence[float], labels: Sequence[str] = SCORES) -> list[float]:
    """P(the answer is exactly this label) from P(the answer starts with it).

    Teacher-forced log P("1") also counts answers that continue "10"; since
    "10" is itself a label, P(exactly "1") = P("1") - P("10"). Longer labels
    are handled first so this works for any prefix-closed label set.
    """
    prob = [math.exp(lp) for lp in logprobs]
    exact = list(prob)
    for i in sorted(range(len(labels)), key=lambda k: -len(labels[k])):
        longer = [j for j in range(len(labels)) if j != i and labels[j].startswith(labels[i])]
        exact[i] = max(0.0, prob[i] - sum(exact[j] for j in longer))
    return exact


def expected_score(logprobs: Sequence[float], min_mass: float = 0.0) -> tuple[float | None, float]:
    """Probability-weighted mean of 0..10 given log P of each score label.

    Returns (score, mass): `mass` is the total probability on the labels;
    the score is None when the mass is below `min_mass` (the judge was not
    answering with a score at all).
    """
    exact = exact_probabilities(logprobs)
    mass = sum(exact)
    if mass <= 0 or mass < min_mass:
        return None, mass
    return sum(int(label) * p for label, p in zip(SCORES, exact)) / mass, mass


def parse_score(text: str) -> float | None:
    """The score a judge wrote (0-10), or None when it wrote none or an invalid one.

    The verdict is the judge's first answer: a bare number on the first line,
    else its first "Final score: N", else its last "score: N". What it writes
    after a verdict is not read: a judge that answered "3" and went on copying
    the judged text ("3\nScore: 10 ...") gave 3, not the score it copied.
    """
    bare = _BARE.match(text)
    finals = _FINAL_SCORE.findall(text)
    if bare:
        value = float(bare.group(1))
    elif finals:
        value = float(finals[0])
    else:
        matches = _SCORE.findall(text)
        if not matches:
            return None
        value = float(matches[-1])
    return value if 0.0 <= value <= 10.0 else None
