"""Self-certainty: how sure the model is of its own response, read from its next-token distributions.

Intuitor ("Learning to Reason without External Rewards", arXiv 2505.19590) rewards a response by
its self-certainty: the mean over the response's tokens of KL(uniform || p_i), p_i the model's
next-token distribution given the prompt and the response so far (`engines.certainty`). This KL
has no upper bound (a token given almost no probability sends it up; six responses measured 7.0-11.3
nats on the bundled model, whose log V is 10.8), so the score is 10 x KL / (KL + log V): 0 for a flat
distribution, 5 at KL = log V, towards 10 beyond, and never a tie among confident responses as a
clip at 10 would make. `certainty="mean_logprob"` scores the mean log-probability of the
response's own tokens instead: 10 x exp(mean), the geometric-mean token probability. Either costs
one teacher-forced forward pass per sample, no judge prompt.

The full distribution at every response position is more than an OpenAI-compatible server
returns, so this judge needs an engine that `MeasuresCertainty` (the in-process transformers engine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Literal

from autodidact.engines import Engine, MeasuresCertainty, ResponseCertainty
from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment

Certainty = Literal["kl_uniform", "mean_logprob"]


def certainty_score(measured: ResponseCertainty, certainty: Certainty) -> float:
    """The 0-10 score of a measured response (at least one token)."""
    if certainty == "kl_uniform":
        kl = max(0.0, measured.kl_uniform)  # >= 0; float rounding may give -1e-7 for a flat distribution
        return 10.0 * kl / (kl + measured.log_vocab)
    return 10.0 * math.exp(measured.mean_logprob)


class SelfCertaintyJudge:
    """Scores each response by the model's certainty over its tokens; an empty response fails (None).

    A call's `stats`: mean_kl_uniform and mean_logprob over the measured responses.
    """

    name = "self_certainty"
    relative = False

    def __init__(self, engine: Engine, certainty: Certainty = "kl_uniform"):
        if not isinstance(engine, MeasuresCertainty):
            raise AutodidactError(
                "judge.method self_certainty needs an in-process (transformers) engine: it reads the model's whole "
                "next-token distribution, which a server does not return; set judge.model to null or a local model."
            )
        if certainty not in ("kl_uniform", "mean_logprob"):
            raise AutodidactError(f"judge.certainty: expected 'kl_uniform' or 'mean_logprob', got {certainty!r}.")
        self.engine = engine
        self.certainty = certainty

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item, with the call's mean certainties."""
        prompts = [self.engine.render(item.prompt.messages) for item in items]
        responses = [item.response for item in items]
        measured = self.engine.response_certainty(prompts, responses, desc="measuring certainty")
        judgments = [self._judgment(item, m) for item, m in zip(items, measured)]
        valid = [m for m in measured if m.tokens]
        stats = {}
        if valid:
            stats["mean_kl_uniform"] = math.fsum(m.kl_uniform for m in valid) / len(valid)
            stats["mean_logprob"] = math.fsum(m.mean_logprob for m in valid) / len(valid)
        return JudgeResult(judgments, stats)

    def _judgment(self, item: JudgeItem, measured: ResponseCertainty) -> Judgment:
        if not measured.tokens:
            return Judgment(item.sample_id, self.name, None, error="empty response: no tokens to measure certainty on")
        raw = json.dumps({
            "kl_uniform": round(measured.kl_uniform, 6),
            "mean_logprob": round(measured.mean_logprob, 6),
            "tokens": measured.tokens,
            "log_vocab": round(measured.log_vocab, 6),
        })
        return Judgment(item.sample_id, self.name, certainty_score(measured, self.certainty), raw=raw)
