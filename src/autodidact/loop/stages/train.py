"""The train stage: SFT on the selected examples or DPO on the selected pairs, then the iteration's checkpoint.

A NaN loss or weight raises `TrainingFault` before the checkpoint is written;
the runner rolls the iteration back (`roll_back`). An engine with its own
copy of the weights is handed the checkpoint after the commit: a kill before
the handover is redone by a resume, which serves the last checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from autodidact.config import RunConfig
from autodidact.engines import Sleeps
from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import training_examples
from autodidact.records import Judgment, Sample
from autodidact.store import RunStore
from autodidact.training import TrainResult, save_checkpoint, train_dpo, train_sft
from autodidact.training.faults import check_training
from autodidact.training.multiprocess import train_multiprocess


@dataclass(frozen=True)
class Trained:
    """The train stage's output: the trainer's figures and the checkpoint (GRPO: also its scored completions)."""

    result: TrainResult
    learning_rate: float
    checkpoint: Path
    samples: list[Sample] = field(default_factory=list)  # GRPO's completions (origin "online"); none otherwise
    judgments: list[Judgment] = field(default_factory=list)  # their rewards
    slept: bool = False  # the engine freed the accelerator for the trainer

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_samples(self.samples)
        store.add_judgments(self.judgments)
        store.add_checkpoint(iteration, str(self.checkpoint))

    def info(self) -> dict[str, Any]:
        return asdict(self.result) | {"learning_rate": self.learning_rate}


def learning_rate(config: RunConfig, store: RunStore, iteration: int, faults: int | None = None) -> float:
    """The learning rate of an iteration's training: lowered once per earlier fault of that iteration."""
    faults = len(store.faults(iteration)) if faults is None else faults
    return config.training.learning_rate * config.training.retry_lr_factor**faults


def sleep_engine(ctx: RunContext) -> bool:
    """vLLM: weights and KV cache off the GPU while the trainer needs it; the next request wakes it."""
    if isinstance(ctx.engine, Sleeps):
        ctx.engine.sleep()
        return True
    return False


def checkpoint(ctx: RunContext, iteration: int, loss: float | None) -> Path:
    """Save the trained policy as the iteration's checkpoint; a NaN must never reach one."""
    check_training(ctx.policy, loss)
    return save_checkpoint(ctx.policy, ctx.tokenizer, ctx.run_dir / "checkpoints" / f"iter-{iteration}")


def serve_checkpoint(ctx: RunContext, iteration: int, output: Trained) -> None:
    """After the commit: the trainer's cached blocks freed (so vLLM's KV cache fits again), the checkpoint served."""
    if output.slept and torch.cuda.is_available():
        torch.cuda.empty_cache()
    ctx.serve(str(output.checkpoint), iteration)


@dataclass(frozen=True)
class Train:
    """Train the policy in place on the iteration's selection. `sft` and `dpo` are the trainers it calls."""

    name: str = "train"
    sft: Callable[..., TrainResult] = train_sft
    dpo: Callable[..., TrainResult] = train_dpo

    def run(self, ctx: RunContext, iteration: int) -> Trained:
        seed = ctx.config.seed + iteration
        t = ctx.config.training.model_copy(update={"learning_rate": learning_rate(ctx.config, ctx.store, iteration)})
        slept = sleep_engine(ctx)
        # DPO's pairs, or the SFT examples (the selection, and iteration 1's with selection.replay_base)
        data = (
            ctx.store.pairs(iteration)
            if t.method == "dpo"
            else training_examples(ctx.store, ctx.config, iteration, ctx.tasks)
        )
        # The trainer's own logs (loss, learning rate) go to the tracker too.
        with ctx.tracker.training(iteration) as report:
            if t.num_processes > 1:  # data parallel through `accelerate launch`; the weights come back into the policy
                result = train_multiprocess(
                    ctx.config, ctx.policy, ctx.tokenizer, data, t, seed, ctx.run_dir, report=report
                )
            elif t.method == "dpo":
                result = self.dpo(ctx.policy, ctx.tokenizer, data, t, seed=seed, report=report)
            else:
                result = self.sft(ctx.policy, ctx.tokenizer, data, t, seed=seed, report=report)
        path = checkpoint(ctx, iteration, result.loss)
        return Trained(result, t.learning_rate, path, slept=slept)

    def after_commit(self, ctx: RunContext, iteration: int, output: Trained) -> None:
        serve_checkpoint(ctx, iteration, output)
