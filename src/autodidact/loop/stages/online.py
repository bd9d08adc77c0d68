"""Online training (GRPO), its own stage plan: draw -> train -> evaluate -> monitor.

GRPO samples and judges inside training (the judge's scores are its reward),
so the plan has no judge or select stage. Its generate stage only draws the
iteration's prompts (and stores any a task wrote); the train stage draws the
same prompts again from the store (`draw_prompts` is a function of the stored
prompts and the iteration) and stores every scored completion (origin
"online") with its reward. The draw's prompt ids are recorded in the generate
stage's info for reports, never read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from autodidact.judges.health import failure_error
from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import draw_prompts, grow_prompts
from autodidact.loop.stages.train import Trained, checkpoint, learning_rate, serve_checkpoint, sleep_engine
from autodidact.records import Prompt
from autodidact.store import RunStore
from autodidact.tasks.base import OffersSearch
from autodidact.training import RolloutRecorder, train_grpo
from autodidact.training.faults import restore_policy
from autodidact.training.trainer import TrainResult


@dataclass(frozen=True)
class Drawn:
    """The online generate stage's output: the iteration's prompts (trained on by GRPO) and any it wrote."""

    prompts: list[Prompt]
    written: list[Prompt]
    grow_stats: dict[str, int] = field(default_factory=dict)

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_prompts(self.written)

    def info(self) -> dict[str, Any]:
        return {"prompts": len(self.prompts), "prompt_ids": [p.id for p in self.prompts], "online": True} | self.grow_stats


@dataclass(frozen=True)
class OnlineDraw:
    """Draw the iteration's prompts; GRPO samples them inside training."""

    name: str = "generate"

    def run(self, ctx: RunContext, iteration: int) -> Drawn:
        written, stats = grow_prompts(ctx.store, ctx.tasks, ctx.engine, iteration, ctx.config.seed)
        return Drawn(draw_prompts(ctx.store, ctx.config, iteration, written), written, stats)

    def after_commit(self, ctx: RunContext, iteration: int, output: Drawn) -> None:
        pass


@dataclass(frozen=True)
class OnlineTrain:
    """GRPO on the iteration's draw; `grpo` is the trainer it calls."""

    name: str = "train"
    grpo: Callable[..., TrainResult] = train_grpo

    def run(self, ctx: RunContext, iteration: int) -> Trained:
        seed = ctx.config.seed + iteration
        t = ctx.config.training.model_copy(update={"learning_rate": learning_rate(ctx.config, ctx.store, iteration)})
        g = ctx.config.generation
        rollouts = RolloutRecorder(iteration, ctx.judge, ctx.tokenizer)
        drawn = {p.id for p in draw_prompts(ctx.store, ctx.config, iteration)}
        prompts = [p for p in ctx.store.prompts(split="train") if p.id in drawn]  # in the order they were stored
        # A documents source's search index becomes a `search` function that TRL calls for the model.
        search = next((task for task in ctx.tasks.values() if isinstance(task, OffersSearch)), None)
        if search is not None:
            prompts = [search.tool_prompt(p) if p.task == search.name else p for p in prompts]
        slept = sleep_engine(ctx)
        with ctx.tracker.training(iteration) as report:
            result = self.grpo(
                ctx.policy, ctx.tokenizer, prompts, rollouts, t, g, seed,
                temperature=g.temperature_at(iteration),
                tools=[search.search_tool()] if search is not None else None,
                max_tool_calls=search.max_tool_calls if search is not None else None,
                report=report,
            )
        # The rewards were this iteration's training judgments: the judge stage's policy on failures.
        error = failure_error(iteration, rollouts.judgments, ctx.config.judge.max_failed_share)
        if error is not None:
            # Trained in place on the rest: back to the last committed weights, nothing stored, so a
            # resumed run redoes this stage (as after a failed judge stage).
            restore_policy(ctx.policy, ctx.config, ctx.store.checkpoint(iteration - 1) if iteration > 1 else None)
            raise error
        path = checkpoint(ctx, iteration, result.loss)
        samples = [replace(s, origin="online") for s in rollouts.samples]
        return Trained(result, t.learning_rate, path, samples, list(rollouts.judgments), slept)

    def after_commit(self, ctx: RunContext, iteration: int, output: Trained) -> None:
        serve_checkpoint(ctx, iteration, output)
