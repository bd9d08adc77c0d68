"""Self-consistency: the majority answer among a prompt's samples is the pseudo-label.

An extractor pulls the final answer out of each sample; a sample that agrees
with its prompt's majority scores 10, one that does not scores 0, and one
whose answer cannot be extracted is a failed judgment (None).

Tie rule: when several answers share the top count, the one that appears
first (lowest position among the prompt's items, i.e. generation order) is
the majority. Such prompts have a vote margin of 0, so they are easy to spot
in `raw` and to filter out downstream.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

from autodidact.errors import AutodidactError, unknown_name
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment
from autodidact.verifiers import import_dotted

Extractor = Callable[[str], str | None]  # response text -> its final answer, or None

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_NUMERIC = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[-+]?\.\d+")
_ANSWER_TAG = re.compile(r"answer\s*:\s*(.*)", re.IGNORECASE)
_BOXED = "\\boxed{"


def last_number(text: str) -> str | None:
    """The last number in the text ("1,000" and "-2.5" included)."""
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, nested braces included; None when unclosed."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for pos in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        if depth == 0:
            return text[begin:pos].strip() or None
    return None


def final_line(text: str) -> str | None:
    """The last non-empty line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def answer_tag(text: str) -> str | None:
    """What follows the last "Answer:" (case-insensitive), to the end of its line."""
    tagged = [m.strip() for m in _ANSWER_TAG.findall(text)]
    return tagged[-1] if tagged and tagged[-1] else None


EXTRACTORS: dict[str, Extractor] = {
    "last_number": last_number,
    "boxed": boxed,
    "final_line": final_line,
    "answer_tag": answer_tag,
}


def load_extractor(spec: str) -> Extractor:
    """A built-in extractor by name, or any callable by dotted path 'package.module:function'.

    Raises:
        AutodidactError: the name is unknown or the path cannot be imported.
    """
    if spec in EXTRACTORS:
        return EXTRACTORS[spec]
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise unknown_name("extractor (or 'package.module:function')", spec, EXTRACTORS, field="judge.extractor")
    try:
        return import_dotted(spec)
    except ValueError as err:
        raise AutodidactError(f"judge.extractor: {err}. Check the module path and the function name.") from None


def normalise_answer(answer: str) -> str:
    """The form in which answers are compared.

    Whitespace collapsed, case folded, a trailing period dropped; numbers in
    canonical form, so "4", "4.0" and "4." agree and "1,000" equals "1000".
    """
    text = " ".join(answer.split()).rstrip(".").strip().casefold()
    if _NUMERIC.fullmatch(text):
        value = Decimal(text.replace(",", "")).normalize()
        text = format(value if value != 0 else Decimal(0), "f")
    return text


class SelfConsistencyJudge:
    """Score = 10 when a sample's answer is its prompt's majority answer, else 0.

    With `score="share"`: 10 x the share of the prompt's extracted answers equal
    to this sample's, so a score floor keeps only confidently given answers.

    A call's `stats`: vote_margin (mean over prompts with at least one answer of
    (top count - second count) / samples of the prompt), extraction_rate, and
    tie_rate (share of those prompts whose top count was shared).
    """

    name = "self_consistency"
    relative = True  # one response per prompt always agrees with itself

    def __init__(self, extractor: str | Extractor = "last_number", score: Literal["majority", "share"] = "majority"):
        if score not in ("majority", "share"):
            raise AutodidactError(f"judge.consistency_score: expected 'majority' or 'share', got {score!r}.")
        self.score = score
        self.extractor_name = extractor if isinstance(extractor, str) else getattr(extractor, "__name__", "custom")
        self.extract = load_extractor(extractor) if isinstance(extractor, str) else extractor

    def _answer(self, response: str) -> tuple[str | None, str | None]:
        """(normalised answer, error)."""
        try:
            answer = self.extract(response)
        except Exception as err:  # a user extractor's bug fails this judgment, visibly, not the whole run
            return None, f"extractor '{self.extractor_name}' raised {type(err).__name__}: {err}"
        if answer is None or not normalise_answer(str(answer)):
            return None, f"extractor '{self.extractor_name}' found no answer in the response"
        return normalise_answer(str(answer)), None

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """10 / 0 (or the vote share) per item by its prompt's vote, with the votes' figures."""
        answers = [self._answer(item.response) for item in items]
        groups: dict[str, list[int]] = {}
        for idx, item in enumerate(items):
            groups.setdefault(item.prompt.id, []).append(idx)
        judgments: list[Judgment | None] = [None] * len(items)
        margins, ties = [], []
        for members in groups.values():
            # Counter keeps first-seen order and most_common() is stable: ties go to the earliest answer.
            votes = Counter(answers[m][0] for m in members if answers[m][0] is not None)
            ranked = votes.most_common()
            majority = ranked[0][0] if ranked else None
            top, second = (ranked[0][1] if ranked else 0), (ranked[1][1] if len(ranked) > 1 else 0)
            margin = (top - second) / len(members)
            if ranked:
                margins.append(margin)
                ties.append(top == second)
            for m in members:
                answer, error = answers[m]
                if answer is None:
                    score = None
                elif self.score == "share":  # how confidently the model gives this answer, not only whether it wins
                    score = 10.0 * votes[answer] / sum(votes.values())
                else:
                    score = 10.0 if answer == majority else 0.0
                raw = {"answer": answer, "majority": majority, "votes": dict(votes), "margin": round(margin, 6)}
                judgments[m] = Judgment(items[m].sample_id, self.name, score, raw=json.dumps(raw), error=error)
        stats = {"extraction_rate": sum(a is not None for a, _ in answers) / len(items)} if items else {}
        if margins:
            stats["vote_margin"] = sum(margins) / len(margins)
            stats["tie_rate"] = sum(ties) / len(ties)
        return JudgeResult([j for j in judgments if j is not None], stats)
