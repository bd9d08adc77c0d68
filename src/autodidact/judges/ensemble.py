"""Ensembles: several judges (methods, or the direct judge in several personas) score each sample.

Combination rules, over the members that did not fail on that item:
- mean: the mean score.
- min: the lowest score (a sample is as good as its harshest judge says).
- majority: each member votes "good" (score > 5) or "bad" (score < 5); a
  score of exactly 5 abstains. 10 when good votes outnumber bad, 0 when bad
  outnumber good, 5 on a tie.
- product: the geometric mean on the 0-10 scale, 10 x prod(s_i / 10) ** (1/n):
  high only where every member scores high (e.g. consistency x certainty), 0
  where any member scores 0.
An item every member failed on is a failed judgment (None).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from statistics import fmean, pstdev
from typing import Literal

from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.base import Judge, JudgeItem, JudgeResult
from autodidact.judges.direct import generated_judgment, logprob_judgment
from autodidact.judges.prompts import DIRECT_ANSWER_PREFIX, persona_prompt
from autodidact.judges.scoring import SCORES
from autodidact.records import Judgment

Combine = Literal["mean", "min", "majority", "product"]


def combine_scores(scores: Sequence[float], how: Combine) -> float:
    """One 0-10 score from the members' scores (at least one); see the module docstring."""
    if how == "mean":
        return fmean(scores)
    if how == "min":
        return min(scores)
    if how == "product":
        return 10.0 * math.prod(s / 10.0 for s in scores) ** (1.0 / len(scores))
    good, bad = sum(s > 5 for s in scores), sum(s < 5 for s in scores)
    return 10.0 if good > bad else 0.0 if bad > good else 5.0


class PersonaJudge:
    """The direct 0-10 judge, with a persona (e.g. "You are a meticulous math teacher.") before its instructions."""

    name = "persona"
    relative = False

    def __init__(
        self, engine: Engine, persona: str, mode: Literal["logprobs", "generate"] = "logprobs", min_mass: float = 1e-4
    ):
        self.engine = engine
        self.persona = persona
        self.mode = mode
        self.min_mass = min_mass

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item; no statistics."""
        prompts = [
            self.engine.render([{"role": "user", "content": persona_prompt(self.persona, i.prompt.text, i.response)}])
            + DIRECT_ANSWER_PREFIX
            for i in items
        ]
        if self.mode == "logprobs":
            table = self.engine.continuation_logprobs(prompts, SCORES, desc="judging (persona)")
            judgments = [logprob_judgment(i.sample_id, self.name, lp, self.min_mass) for i, lp in zip(items, table)]
            return JudgeResult(judgments)
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
        outputs = self.engine.generate(prompts, params, desc="judging (persona)")
        return JudgeResult([
            generated_judgment(i.sample_id, self.name, out[0].text, engine_error=request_error(out))
            for i, out in zip(items, outputs)
        ])


class EnsembleJudge:
    """Every member judges every item; their valid scores are combined per item.

    A call's `stats`: disagreement (mean over items with >= 2 valid member scores
    of the population std of those scores), member_failure_rate, and each
    member's own stats of that call under "<index>:<name>/<key>". It is
    `relative` when any member is (one answer alone cannot be scored by it).
    """

    name = "ensemble"
    relative: bool

    def __init__(self, members: Sequence[Judge], combine: Combine = "mean"):
        if not members:
            raise ValueError("an ensemble needs at least one member judge")
        self.members = list(members)
        self.combine = combine
        self.labels = [f"{i}:{m.name}" for i, m in enumerate(self.members)]
        self.relative = any(m.relative for m in self.members)

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """The members' scores combined per item, with their disagreement and the members' own stats."""
        results = [member.judge(items) for member in self.members]
        tables = [result.judgments for result in results]  # (members, items)
        for label, table in zip(self.labels, tables):
            if len(table) != len(items):
                raise RuntimeError(f"ensemble member {label} returned {len(table)} judgments for {len(items)} items")
        judgments, spreads = [], []
        for n, item in enumerate(items):
            votes = [(label, table[n]) for label, table in zip(self.labels, tables)]
            scores = [j.score for _, j in votes if j.score is not None]
            score = combine_scores(scores, self.combine) if scores else None
            error = None if scores else "every member failed: " + "; ".join(f"{label}: {j.error}" for label, j in votes)
            if len(scores) >= 2:
                spreads.append(pstdev(scores))
            raw = json.dumps({"combine": self.combine, "members": {label: j.score for label, j in votes}})
            rationale = "\n".join(f"[{label}] {j.rationale}" for label, j in votes if j.rationale)
            judgments.append(Judgment(item.sample_id, self.name, score, rationale=rationale, raw=raw, error=error))
        failed = sum(j.score is None for table in tables for j in table)
        stats = {"member_failure_rate": failed / (len(items) * len(tables))} if items else {}
        if spreads:
            stats["disagreement"] = fmean(spreads)
        for label, result in zip(self.labels, results):
            stats |= {f"{label}/{key}": value for key, value in result.stats.items()}
        return JudgeResult(judgments, stats)
