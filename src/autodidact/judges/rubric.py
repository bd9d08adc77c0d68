"""Chain-of-thought rubric: the model reasons through named criteria, then scores."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.judges.direct import generated_judgment, logprob_judgment
from autodidact.judges.prompts import RUBRIC_ANSWER_PREFIX, rubric_prompt
from autodidact.judges.scoring import SCORES

_FINAL = re.compile(r"final\s+score", re.IGNORECASE)


class RubricJudge:
    """Reason over each criterion (greedy), then score.

    mode "generate": the score is parsed from the "Final score: N" the judge
    wrote. mode "logprobs": the reasoning is cut before any verdict it wrote,
    "Final score: " is appended, and the score is the expectation over the
    score tokens (a 135M model often reasons but forgets the format).
    """

    name = "rubric"
    relative = False

    def __init__(
        self,
        engine: Engine,
        criteria: Sequence[str],
        mode: Literal["logprobs", "generate"] = "logprobs",
        reasoning_tokens: int = 96,
        min_mass: float = 1e-4,
    ):
        self.engine = engine
        self.criteria = list(criteria)
        self.mode = mode
        self.reasoning_tokens = reasoning_tokens
        self.min_mass = min_mass

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item, its reasoning as the rationale; no statistics."""
        prompts = [
            self.engine.render([{"role": "user", "content": rubric_prompt(i.prompt.text, i.response, self.criteria)}])
            for i in items
        ]
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=self.reasoning_tokens)
        outputs = self.engine.generate(prompts, params, desc="judging (reasoning)")
        reasoning = [out[0].text for out in outputs]
        failures = [request_error(out) for out in outputs]  # a failed reasoning step fails the judgment
        if self.mode == "generate":
            return JudgeResult([
                generated_judgment(i.sample_id, self.name, text, rationale=text, engine_error=e)
                for i, text, e in zip(items, reasoning, failures)
            ])
        cut = [_FINAL.split(text, maxsplit=1)[0].rstrip() for text in reasoning]
        scored = [p + r + "\n" + RUBRIC_ANSWER_PREFIX for p, r in zip(prompts, cut)]
        table = self.engine.continuation_logprobs(scored, SCORES, desc="judging (scores)")
        return JudgeResult([
            logprob_judgment(i.sample_id, self.name, lp, self.min_mass, rationale=r, engine_error=e)
            for i, lp, r, e in zip(items, table, cut, failures)
        ])
