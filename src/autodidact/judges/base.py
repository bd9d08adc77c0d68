"""The judge protocol and what a judge returns.

Every judge takes `JudgeItem`s and returns a `JudgeResult`: one `Judgment`
per item, in order, together with the judge's statistics of that call (vote
margin, position consistency...) and, for the comparing judges, each compared
pair with both verdicts. Nothing is left on the judge after a call: what a
call found is in what it returned.

A judgment that fails (unparseable output, too little probability on the
score tokens) has `score=None`: it is counted and excluded from selection,
never read as 0. A judge never reads a score out of the text being judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from autodidact.records import Judgment, Prompt


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge, with the prompt it answers."""

    sample_id: str
    prompt: Prompt
    response: str


@dataclass(frozen=True)
class JudgeResult:
    """What one `Judge.judge` call returns.

    `judgments[i]` judges `items[i]`. `stats` are per-call figures stored as the
    iteration's metrics (empty for judges without any). `outcomes` holds the
    compared pairs of the pairwise and contrastive judges (`tournament.PairOutcome`),
    which critique-and-revise rewrites from; empty for the others.
    """

    judgments: list[Judgment]
    stats: dict[str, float] = field(default_factory=dict)
    outcomes: tuple[Any, ...] = ()


@runtime_checkable
class Judge(Protocol):
    """Scores responses. `relative` judges compare the samples of a prompt (pairwise, votes): one
    response alone cannot be scored by them, so held-out answers go to a direct judge instead."""

    name: str
    relative: bool

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One judgment per item, in the same order, with the call's statistics."""
        ...
