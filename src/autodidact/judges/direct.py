"""Direct scoring: the model rates a response from 0 to 10."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.judges.prompts import DIRECT_ANSWER_PREFIX, direct_prompt
from autodidact.judges.scoring import SCORES, expected_score, parse_score
from autodidact.records import Judgment


def logprob_judgment(
    sample_id: str,
    judge: str,
    logprobs: Sequence[float],
    min_mass: float,
    rationale: str = "",
    engine_error: str | None = None,
) -> Judgment:
    """A judgment from log P of each score label "0".."10" (shared by the judges).

    Failed (None) with the engine's reason when the request failed, here
    (`logprobs` is a `FailedRow`) or in an earlier step (`engine_error`).
    """
    failure = engine_error or request_error(logprobs)
    if failure:
        return Judgment(sample_id, judge, None, rationale=rationale, error=f"judge engine: {failure}")
    score, mass = expected_score(logprobs, min_mass)
    raw = json.dumps({"score_mass": round(mass, 6), "logprobs": [round(x, 4) for x in logprobs]})
    error = None if score is not None else f"score tokens got probability {mass:.2g} (< {min_mass:g})"
    return Judgment(sample_id=sample_id, judge=judge, score=score, rationale=rationale, raw=raw, error=error)


def generated_judgment(
    sample_id: str, judge: str, text: str, rationale: str = "", engine_error: str | None = None
) -> Judgment:
    """A judgment parsed from the judge's generated text (None when it wrote no score or the request failed)."""
    if engine_error:
        return Judgment(sample_id, judge, None, rationale=rationale, error=f"judge engine: {engine_error}")
    score = parse_score(text)
    error = None if score is not None else "no score in the judge's output"
    return Judgment(sample_id=sample_id, judge=judge, score=score, rationale=rationale, raw=text, error=error)


class DirectScoreJudge:
    """Rates each response 0-10.

    mode "logprobs": one forward pass; the score is the probability-weighted
    mean over the tokens "0".."10" right after "Score: " in the judge's
    reply, so no sampling noise and no parsing. mode "generate": the judge
    writes the number and it is parsed (for servers without log-probabilities).
    """

    name = "direct"
    relative = False

    def __init__(
        self,
        engine: Engine,
        mode: Literal["logprobs", "generate"] = "logprobs",
        batch_size: int = 16,
        min_mass: float = 1e-4,
    ):
        self.engine = engine
        self.mode = mode
        self.batch_size = batch_size
        self.min_mass = min_mass

    def _prompts(self, items: Sequence[JudgeItem]) -> list[str]:
        return [
            self.engine.render([{"role": "user", "content": direct_prompt(item.prompt.text, item.response)}])
            + DIRECT_ANSWER_PREFIX
            for item in items
        ]

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item; no statistics."""
        prompts = self._prompts(items)
        if self.mode == "logprobs":
            table = self.engine.continuation_logprobs(prompts, SCORES, desc="judging")
            judgments = [logprob_judgment(i.sample_id, self.name, lp, self.min_mass) for i, lp in zip(items, table)]
            return JudgeResult(judgments)
        outputs = self.engine.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=8), desc="judging")
        return JudgeResult([
            generated_judgment(i.sample_id, self.name, out[0].text, engine_error=request_error(out))
            for i, out in zip(items, outputs)
        ])
