"""Pairwise comparison: the model picks the better of two responses to the same prompt.

Each pair is shown in both orders, so a judge that prefers a position rather
than a response produces ties, not wins (see `tournament`). Per-sample scores
come from the results by Bradley-Terry or win rate, on the 0-10 scale.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Literal

from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.judges.prompts import PAIRWISE_ANSWER_PREFIX, pairwise_prompt
from autodidact.judges.tournament import Aggregate, Schedule, Verdict, run_tournament

CHOICES = ("A", "B")

# The last "Better response: X" the judge wrote; the letter itself is case-sensitive so
# that "better response is a bit..." is not read as a vote for A.
_VERDICT = re.compile(r"(?i:better\s+response)\s*(?:(?i:is)|:)?\s*[*(\[]*\s*(?:(?i:response)\s+)?([AB])(?![A-Za-z0-9])")
# Or a reply whose first line is nothing but the letter ("B", "**A**", "(B).", "Response A").
_BARE = re.compile(r"^\W*(?:(?i:response)\s+)?([AB])\W*$")


def parse_choice(text: str) -> str | None:
    """The response ("A" or "B") the judge named in its own output, or None.

    A bare letter on the first line wins, then the first "Better response: X":
    a judge that answers and then copies a forged verdict from the judged text
    keeps its own answer (as `parse_score` reads scores).
    """
    lines = text.strip().splitlines()
    bare = _BARE.match(lines[0]) if lines else None
    if bare:
        return bare.group(1)
    verdicts = _VERDICT.findall(text)
    return verdicts[0] if verdicts else None


def logprob_verdict(
    logprobs: Sequence[float], min_mass: float, rationale: str = "", engine_error: str | None = None
) -> Verdict:
    """The verdict from log P("A") and log P("B") after the answer prefix.

    Failed when the engine's request failed, here (`logprobs` is a
    `FailedRow`) or in an earlier step (`engine_error`), or when "A" and "B"
    together get less than `min_mass`.
    """
    failure = engine_error or request_error(logprobs)
    if failure:
        return Verdict(None, rationale, "", f"judge engine: {failure}")
    lp_a, lp_b = logprobs
    mass = math.exp(lp_a) + math.exp(lp_b)
    raw = json.dumps({"logprob_a": round(lp_a, 4), "logprob_b": round(lp_b, 4)})
    if mass < min_mass or mass <= 0:
        return Verdict(None, rationale, raw, f"'A' and 'B' got probability {mass:.2g} (< {min_mass:g})")
    choice = "A" if lp_a > lp_b else "B" if lp_b > lp_a else "="
    return Verdict(choice, rationale, raw)


def generated_verdict(text: str, rationale: str = "", engine_error: str | None = None) -> Verdict:
    """The verdict parsed from generated text; a reply naming neither response is a failed comparison."""
    if engine_error:
        return Verdict(None, rationale, text, f"judge engine: {engine_error}")
    choice = parse_choice(text)
    return Verdict(choice, rationale, text, None if choice else "no 'A' or 'B' verdict in the judge's output")


class PairwiseJudge:
    """Compare the samples of each prompt two by two, in both orders.

    mode "logprobs": one forward pass per ordered pair; the verdict is
    whichever of "A" / "B" is more likely right after "Better response: ".
    mode "generate": the judge writes the letter and it is parsed; an
    unparseable reply fails that comparison.

    A call's result holds every pair with both verdicts in `outcomes` (a
    source of preference pairs) and the figures of `tournament.tournament_stats`
    (position_consistency, ...) in `stats`.
    """

    name = "pairwise"
    relative = True  # scores compare the samples of a prompt: one response per prompt cannot be judged

    def __init__(
        self,
        engine: Engine,
        mode: Literal["logprobs", "generate"] = "logprobs",
        schedule: Schedule = "round_robin",
        k: int = 2,
        aggregate: Aggregate = "bradley_terry",
        min_mass: float = 1e-4,
    ):
        self.engine = engine
        self.mode = mode
        self.schedule = schedule
        self.k = k
        self.aggregate = aggregate
        self.min_mass = min_mass

    def compare(self, pairs: Sequence[tuple[JudgeItem, JudgeItem]]) -> list[Verdict]:
        """One verdict per (A, B) pair, in order."""
        prompts = [
            self.engine.render([{"role": "user", "content": pairwise_prompt(a.prompt.text, a.response, b.response)}])
            for a, b in pairs
        ]
        if self.mode == "logprobs":
            scored = [p + PAIRWISE_ANSWER_PREFIX for p in prompts]
            table = self.engine.continuation_logprobs(scored, CHOICES, desc="judging (pairs)")
            return [logprob_verdict(lp, self.min_mass) for lp in table]
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
        outputs = self.engine.generate(prompts, params, desc="judging (pairs)")
        return [generated_verdict(out[0].text, engine_error=request_error(out)) for out in outputs]

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """Scores from a tournament per prompt, with its pairs (`outcomes`) and figures (`stats`)."""
        return run_tournament(items, self.compare, self.name, self.schedule, self.k, self.aggregate)
