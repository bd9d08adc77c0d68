"""The select stage: from the iteration's judged samples to SFT examples (with any rewrites) or DPO pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import train_samples
from autodidact.records import PreferencePair, SFTExample
from autodidact.selection import drop_near_duplicates, revision_examples, select, select_pairs
from autodidact.store import RunStore


@dataclass(frozen=True)
class Selected:
    """The select stage's output: SFT examples, or preference pairs (`pairs` is None for SFT)."""

    examples: list[SFTExample]
    pairs: list[PreferencePair] | None = None
    revisions: int | None = None  # rewrites kept, when selection.revise is on
    near_duplicates: int | None = None  # examples dropped, when selection.dedup_similarity is set

    def write(self, store: RunStore, iteration: int) -> None:
        if self.pairs is not None:
            store.add_pairs(iteration, self.pairs)
        else:
            store.add_selection(iteration, self.examples)

    def info(self) -> dict[str, Any]:
        if self.pairs is not None:
            return {"pairs": len(self.pairs)}
        info: dict[str, Any] = {} if self.revisions is None else {"revisions": self.revisions}
        if self.near_duplicates is not None:
            info["near_duplicates"] = self.near_duplicates
        return info | {"kept": len(self.examples)}


@dataclass(frozen=True)
class Select:
    """Keep what the judge scored best: top-k or threshold examples, or best-versus-worst pairs."""

    name: str = "select"

    def run(self, ctx: RunContext, iteration: int) -> Selected:
        prompts, samples = train_samples(ctx.store, iteration)
        revisions = [s for s in samples if s.origin == "revision"]  # stored by the judge stage
        samples = [s for s in samples if s.origin != "revision"]
        judgments = ctx.store.judgments(iteration, ctx.judge.name)
        s = ctx.config.selection
        if ctx.config.training.method == "dpo":
            return Selected([], pairs=select_pairs(prompts, samples, judgments, s.min_margin, s.length_band))
        floor = s.min_score_at(iteration)  # selection.min_score_schedule's entry, else min_score
        examples = select(prompts, samples, judgments, s.strategy, s.top_k, floor, s.length_band)
        revised = revision_examples(prompts, revisions, examples)  # none unless selection.revise stored rewrites
        examples += revised
        dropped = None
        if s.dedup_similarity is not None:
            before = len(examples)
            examples = drop_near_duplicates(examples, s.dedup_similarity, ctx.embedder())
            dropped = before - len(examples)
        return Selected(examples, revisions=len(revised) if s.revise else None, near_duplicates=dropped)

    def after_commit(self, ctx: RunContext, iteration: int, output: Selected) -> None:
        pass
