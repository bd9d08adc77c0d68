"""Contrastive judging: explain why one response beats the other, then decide.

For each pair (in both orders, as in pairwise judging) the model first writes
an explanation, greedy and within `reasoning_tokens`, then gives its verdict.
The explanations are kept in each judgment's rationale. They also drive
critique-and-revise: the model rewrites the losing response using the
explanation, and the revision can become a training sample.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.base import JudgeItem
from autodidact.judges.pairwise import CHOICES, PairwiseJudge, generated_verdict, logprob_verdict
from autodidact.judges.prompts import PAIRWISE_ANSWER_PREFIX, contrastive_prompt, revise_prompt
from autodidact.judges.tournament import Aggregate, PairOutcome, Schedule, Verdict
from autodidact.records import Prompt

# A verdict line the judge wrote itself ("Better response: A"); cut before the verdict slot is appended.
_VERDICT_LINE = re.compile(r"^[\W_]*better\s+response\s*:", re.IGNORECASE | re.MULTILINE)


class ContrastiveJudge(PairwiseJudge):
    """Explain-then-decide pairwise judge: `PairwiseJudge` with an explanation before each verdict.

    mode "logprobs": the explanation is cut before any verdict line it wrote,
    "Better response: " is appended, and the verdict is whichever of "A" / "B"
    is more likely. mode "generate": the verdict is parsed from the last
    "Better response: X" in the explanation; none there fails the comparison.

    A call's result carries every pair in `outcomes`, both verdicts with their
    explanations (`revision_requests` turns them into rewrites), and the
    tournament's figures in `stats`.
    """

    name = "contrastive"
    relative = True  # as pairwise: scores compare the samples of a prompt

    def __init__(
        self,
        engine: Engine,
        mode: Literal["logprobs", "generate"] = "logprobs",
        reasoning_tokens: int = 96,
        schedule: Schedule = "round_robin",
        k: int = 2,
        aggregate: Aggregate = "bradley_terry",
        min_mass: float = 1e-4,
    ):
        super().__init__(engine, mode, schedule, k, aggregate, min_mass)
        self.reasoning_tokens = reasoning_tokens

    def compare(self, pairs: Sequence[tuple[JudgeItem, JudgeItem]]) -> list[Verdict]:
        """One verdict per (A, B) pair, in order, with the explanation as its rationale."""
        prompts = [
            self.engine.render([{"role": "user", "content": contrastive_prompt(a.prompt.text, a.response, b.response)}])
            for a, b in pairs
        ]
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=self.reasoning_tokens)
        outputs = self.engine.generate(prompts, params, desc="judging (explanations)")
        texts = [out[0].text for out in outputs]
        failures = [request_error(out) for out in outputs]  # no explanation: that comparison fails
        if self.mode == "generate":
            return [generated_verdict(t, rationale=t, engine_error=e) for t, e in zip(texts, failures)]
        cut = [_VERDICT_LINE.split(text, maxsplit=1)[0].rstrip() for text in texts]
        scored = [p + c + "\n" + PAIRWISE_ANSWER_PREFIX for p, c in zip(prompts, cut)]
        table = self.engine.continuation_logprobs(scored, CHOICES, desc="judging (verdicts)")
        return [logprob_verdict(lp, self.min_mass, c, e) for lp, c, e in zip(table, cut, failures)]


# --- critique and revise -----------------------------------------------------


@dataclass(frozen=True)
class RevisionRequest:
    """A losing response to rewrite, with the judge's explanation of why it lost."""

    prompt: Prompt
    worse_response: str
    explanation: str
    worse_label: str = ""  # what the explanation calls the worse response ("A" or "B"), if known


def revision_requests(outcomes: Sequence[PairOutcome]) -> list[RevisionRequest]:
    """One request per decided pair (ties and failed pairs have no loser) of a judging's `JudgeResult.outcomes`.

    The explanation is the one written for the first order (`first` as A,
    `second` as B); both orders agreed on the winner, so either argues for it.
    """
    requests = []
    for o in outcomes:
        if o.result not in (0.0, 1.0):
            continue
        worse, label = (o.second, "B") if o.result == 1.0 else (o.first, "A")
        requests.append(RevisionRequest(worse.prompt, worse.response, o.verdicts[0].rationale, label))
    return requests


def critique_and_revise_batch(engine: Engine, requests: Sequence[RevisionRequest], params: SamplingParams) -> list[str]:
    """Ask the model to rewrite each worse response using the explanation.

    Args:
        engine: the model that revises (usually the policy itself).
        requests: what to revise; the response and the explanation are fenced
            as untrusted text in the prompt.
        params: sampling for the revision; only one completion per request
            is made (`params.n` is ignored).

    Returns:
        One revision per request, in order; "" where the model wrote nothing
        or the engine's request failed (callers should drop those rather than
        train on them).
    """
    texts = [revise_prompt(r.prompt.text, r.worse_response, r.explanation, r.worse_label) for r in requests]
    prompts = [engine.render([{"role": "user", "content": text}]) for text in texts]
    outputs = engine.generate(prompts, dataclasses.replace(params, n=1), desc="revising") if prompts else []
    return [out[0].text.strip() for out in outputs]


def critique_and_revise(
    engine: Engine, prompt: Prompt, worse_response: str, explanation: str, params: SamplingParams, worse_label: str = ""
) -> str:
    """Rewrite one worse response using the judge's explanation (see `critique_and_revise_batch`)."""
    request = RevisionRequest(prompt, worse_response, explanation, worse_label)
    [revision] = critique_and_revise_batch(engine, [request], params)
    return revision
