"""The judge stage: the judge scores every training sample of the iteration; with `selection.revise` the
policy then rewrites the loser of each decided pair.

Critique and revise happens here because the contrastive judge's decided
pairs exist only in what its call returned: the rewrites are stored as
samples (origin "revision", `it{N}-{prompt_id}-rev{k}`) in this stage's
transaction, and the select stage reads them back, so a resumed run neither
loses nor regenerates them. Too many failed judgments raise before anything
is stored: the stage is redone on resume.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autodidact.engines import SamplingParams
from autodidact.judges import JudgeItem
from autodidact.judges.contrastive import critique_and_revise_batch, revision_requests
from autodidact.judges.health import failure_error, judge_stats
from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import train_samples
from autodidact.records import Judgment, Sample
from autodidact.store import RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """The judge stage's output: judgments, the judge's statistics (stored as metrics) and any rewrites."""

    judgments: list[Judgment]
    stats: dict[str, float | None] = field(default_factory=dict)
    judge_tokens: int = 0
    revisions: list[Sample] | None = None  # None when selection.revise is off
    revisions_requested: int = 0

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_judgments(self.judgments)
        store.add_samples(self.revisions or [])
        if self.stats:
            store.add_metrics(iteration, self.stats)

    def info(self) -> dict[str, Any]:
        failed = sum(1 for j in self.judgments if j.score is None)
        info = {**self.stats, "judgments": len(self.judgments), "failed": failed, "judge_tokens": self.judge_tokens}
        if self.revisions is not None:
            info |= {"revisions": len(self.revisions), "revisions_empty": self.revisions_requested - len(self.revisions)}
            info["revision_tokens"] = sum(s.num_tokens for s in self.revisions)
        return info


@dataclass(frozen=True)
class Judge:
    """Judge the iteration's training samples."""

    name: str = "judge"

    def run(self, ctx: RunContext, iteration: int) -> Judged:
        prompts, samples = train_samples(ctx.store, iteration)
        tokens_before = ctx.judge_engine.tokens
        result = ctx.judge.judge([JudgeItem(s.id, prompts[s.prompt_id], s.text) for s in samples])
        judge_tokens = ctx.judge_engine.tokens - tokens_before
        judgments = result.judgments
        failed = sum(1 for j in judgments if j.score is None)
        if failed:
            log.warning(
                "iteration %d: %d of %d judgments failed (score None); they are excluded", iteration, failed, len(judgments)
            )
        error = failure_error(iteration, judgments, ctx.config.judge.max_failed_share)
        if error is not None:
            raise error  # before anything is stored: the stage is redone on resume
        stats = judge_stats(result)  # e.g. position consistency, vote margin: per-iteration metrics
        if not ctx.config.selection.revise:
            return Judged(judgments, stats, judge_tokens)
        revisions, requested = revise(ctx, iteration, result.outcomes)
        return Judged(judgments, stats, judge_tokens, revisions, requested)

    def after_commit(self, ctx: RunContext, iteration: int, output: Judged) -> None:
        pass


def revise(ctx: RunContext, iteration: int, outcomes: Sequence[Any]) -> tuple[list[Sample], int]:
    """The policy rewrites the loser of each decided pair, using the judge's explanation.

    Returns the non-empty rewrites as samples, `k` counting them per prompt,
    and how many rewrites were asked for.
    """
    requests = revision_requests(outcomes)
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=ctx.config.generation.max_new_tokens)
    texts = critique_and_revise_batch(ctx.engine, requests, params)
    first_index = ctx.config.generation.samples_per_prompt + 1  # after the generated and deployed samples
    per_prompt: Counter[str] = Counter()
    samples = []
    for request, text in zip(requests, texts):
        if not text:
            continue
        prompt_id, k = request.prompt.id, per_prompt[request.prompt.id]
        per_prompt[prompt_id] += 1
        num_tokens = len(ctx.tokenizer(text, add_special_tokens=False)["input_ids"])
        samples.append(
            Sample(f"it{iteration}-{prompt_id}-rev{k}", prompt_id, iteration, first_index + k, text, num_tokens, "revision")
        )
    return samples, len(requests)
