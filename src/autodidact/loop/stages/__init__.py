"""The stages of an iteration, one module each, behind one protocol; and the two stage plans.

A stage's `run(ctx, iteration)` reads the store and the run context and
returns a typed output; the runner commits `output.write(store, iteration)`
together with the stage's done mark (`output.info()` as its info) in one
transaction, then calls `after_commit` (the train stage hands the new
checkpoint to a serving engine there). A stage can therefore run alone
against a store: `Select().run(ctx, 1)` returns what select would store.

- `SUPERVISED` (SFT, DPO): generate -> judge -> select -> train -> evaluate -> monitor
- `ONLINE` (GRPO): generate (the draw) -> train (samples, judges, trains) -> evaluate -> monitor

Iteration 0 runs only the plan's evaluate and monitor stages (the base model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from autodidact.errors import AutodidactError
from autodidact.loop.stages.evaluate import Evaluate
from autodidact.loop.stages.generate import Generate
from autodidact.loop.stages.judge import Judge
from autodidact.loop.stages.monitor import Monitor
from autodidact.loop.stages.names import STAGES
from autodidact.loop.stages.online import OnlineDraw, OnlineTrain
from autodidact.loop.stages.select import Select
from autodidact.loop.stages.train import Train

if TYPE_CHECKING:
    from autodidact.config import RunConfig
    from autodidact.loop.context import RunContext
    from autodidact.store import RunStore

BASE_STAGES = ("evaluate", "monitor")  # what iteration 0 runs: the base model measured


class StageOutput(Protocol):
    """What a stage returns: rows to store, and the info stored with its done mark."""

    def write(self, store: RunStore, iteration: int) -> None: ...

    def info(self) -> dict[str, Any]: ...


class Stage(Protocol):
    """One stage of an iteration; `name` is its mark in the store."""

    name: str

    def run(self, ctx: RunContext, iteration: int) -> StageOutput: ...

    def after_commit(self, ctx: RunContext, iteration: int, output: Any) -> None: ...


@dataclass(frozen=True)
class StagePlan:
    """The stages of an iteration, in order."""

    stages: tuple[Stage, ...]

    def for_iteration(self, iteration: int) -> tuple[Stage, ...]:
        """The stages iteration `iteration` runs: all of them, or at iteration 0 evaluate and monitor only."""
        return self.stages if iteration > 0 else tuple(s for s in self.stages if s.name in BASE_STAGES)

    def with_stage(self, stage: Stage) -> StagePlan:
        """This plan with `stage` in place of the stage of the same name (a test's or an extension's variant)."""
        if stage.name not in [s.name for s in self.stages]:
            raise AutodidactError(f"the plan has no stage '{stage.name}' to replace; it has {[s.name for s in self.stages]}.")
        return StagePlan(tuple(stage if s.name == stage.name else s for s in self.stages))


SUPERVISED = StagePlan((Generate(), Judge(), Select(), Train(), Evaluate(), Monitor()))
ONLINE = StagePlan((OnlineDraw(), OnlineTrain(), Evaluate(), Monitor()))


def plan_for(config: RunConfig) -> StagePlan:
    """The plan of a run's training method: GRPO samples and judges inside training, SFT and DPO do not."""
    return ONLINE if config.training.method == "grpo" else SUPERVISED


__all__ = [
    "BASE_STAGES", "ONLINE", "STAGES", "SUPERVISED", "Evaluate", "Generate", "Judge", "Monitor", "OnlineDraw",
    "OnlineTrain", "Select", "Stage", "StageOutput", "StagePlan", "Train", "plan_for",
]
