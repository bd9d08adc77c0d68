"""Seams of the loop's tests: a stage that is killed at one iteration, and the plan of a config with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from autodidact.config import validate_config
from autodidact.loop.stages import Stage, StagePlan, plan_for


@dataclass(frozen=True)
class KilledAt:
    """`stage`, except that at `iteration` it raises KeyboardInterrupt before storing anything (a simulated kill)."""

    stage: Stage
    iteration: int

    @property
    def name(self) -> str:
        return self.stage.name

    def run(self, ctx, iteration: int) -> Any:
        if iteration == self.iteration:
            raise KeyboardInterrupt(f"simulated kill in iteration {iteration}'s {self.name} stage")
        return self.stage.run(ctx, iteration)

    def after_commit(self, ctx, iteration: int, output: Any) -> None:
        self.stage.after_commit(ctx, iteration, output)


def plan_with(config: dict, stage: Stage) -> StagePlan:
    """The plan `config` runs, with `stage` in place of the stage of its name."""
    return plan_for(validate_config(config)).with_stage(stage)


@pytest.fixture
def killed_at():
    """Build a plan whose stage `name` is killed at `iteration`: killed_at(config, name, iteration)."""

    def plan(config: dict, name: str, iteration: int) -> StagePlan:
        [stage] = [s for s in plan_for(validate_config(config)).stages if s.name == name]
        return plan_with(config, KilledAt(stage, iteration))

    return plan
