"""The generate stage: `samples_per_prompt` samples of the policy for each prompt of the iteration's draw.

Prompts a task writes for the iteration (self-instruct) are stored with the
samples, so a stage killed before its commit writes them again. A logged
conversation's deployed reply joins its prompt's samples as one more candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autodidact.engines import SamplingParams
from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import draw_prompts, grow_prompts
from autodidact.records import Prompt, Sample
from autodidact.store import RunStore
from autodidact.tasks.answering import answer


@dataclass(frozen=True)
class Generated:
    """The generate stage's output: the iteration's new prompts and its samples."""

    drawn: int  # prompts answered
    written: list[Prompt]
    samples: list[Sample]
    grow_stats: dict[str, int] = field(default_factory=dict)

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_prompts(self.written)
        store.add_samples(self.samples)

    def info(self) -> dict[str, Any]:
        tokens = sum(s.num_tokens for s in self.samples)
        return {"prompts": self.drawn, "samples": len(self.samples), "tokens": tokens} | self.grow_stats


@dataclass(frozen=True)
class Generate:
    """Sample the policy on the iteration's draw of training prompts."""

    name: str = "generate"

    def run(self, ctx: RunContext, iteration: int) -> Generated:
        g = ctx.config.generation
        written, stats = grow_prompts(ctx.store, ctx.tasks, ctx.engine, iteration, ctx.config.seed)
        prompts = draw_prompts(ctx.store, ctx.config, iteration, written)
        params = SamplingParams(
            g.samples_per_prompt, g.temperature_at(iteration), g.top_p, g.max_new_tokens,
            seed=ctx.config.seed * 1000 + iteration,
        )
        outputs = answer(ctx.engine, ctx.tasks, prompts, params, desc=f"generating (iter {iteration})")
        samples = [
            Sample(f"it{iteration}-{p.id}-{k}", p.id, iteration, k, c.text, c.num_tokens, origin="generated")
            for p, completions in zip(prompts, outputs)
            for k, c in enumerate(completions)
        ]
        samples += deployed_samples(ctx, iteration, prompts)
        return Generated(len(prompts), written, samples, stats)

    def after_commit(self, ctx: RunContext, iteration: int, output: Generated) -> None:
        pass


def deployed_samples(ctx: RunContext, iteration: int, prompts: list[Prompt]) -> list[Sample]:
    """The reply already given in deployment (logged conversations), as one more candidate per prompt."""
    index = ctx.config.generation.samples_per_prompt  # after the generated samples' indices
    samples = []
    for p in prompts:
        text = p.meta.get("deployed_response")
        if text:
            num_tokens = len(ctx.tokenizer(text, add_special_tokens=False)["input_ids"])
            samples.append(Sample(f"it{iteration}-{p.id}-deployed", p.id, iteration, index, text, num_tokens, "deployed"))
    return samples
