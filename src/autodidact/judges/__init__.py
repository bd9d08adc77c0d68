"""Judges: how the model evaluates its own outputs.

Every judge takes `JudgeItem`s and returns one `Judgment` per item, in order.
A judgment that fails (unparseable output, too little probability on the
score tokens) has `score=None`: it is counted and excluded from selection,
never read as 0. A judge never reads a score out of the text being judged:
scores come from the judge's own output slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from autodidact.errors import unknown_name
from autodidact.records import Judgment, Prompt

if TYPE_CHECKING:
    from autodidact.config import JudgeConfig
    from autodidact.engines import Engine
    from autodidact.tasks import Task


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge, with the prompt it answers."""

    sample_id: str
    prompt: Prompt
    response: str


@runtime_checkable
class Judge(Protocol):
    name: str

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        """One judgment per item, in the same order."""
        ...


def _direct(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.direct import DirectScoreJudge

    return DirectScoreJudge(engine, mode=config.mode, batch_size=config.batch_size, min_mass=config.min_score_mass)


def _rubric(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.rubric import RubricJudge

    return RubricJudge(
        engine,
        criteria=config.criteria,
        mode=config.mode,
        reasoning_tokens=config.reasoning_tokens,
        min_mass=config.min_score_mass,
    )


def _verifier(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.verifier import TaskVerifierJudge

    return TaskVerifierJudge(tasks)


def _program(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.programmatic import ProgramJudge

    return ProgramJudge(
        config.program, config.program_args, config.program_timeout, config.program_workers,
        memory_mb=config.program_memory_mb, network=config.program_network,
    )


def _pairwise(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.pairwise import PairwiseJudge

    return PairwiseJudge(
        engine,
        mode=config.mode,
        schedule=config.pairwise_schedule,
        k=config.pairwise_k,
        aggregate=config.pairwise_aggregate,
        min_mass=config.min_score_mass,
    )


def _contrastive(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.contrastive import ContrastiveJudge

    return ContrastiveJudge(
        engine,
        mode=config.mode,
        reasoning_tokens=config.reasoning_tokens,
        schedule=config.pairwise_schedule,
        k=config.pairwise_k,
        aggregate=config.pairwise_aggregate,
        min_mass=config.min_score_mass,
    )


def _self_consistency(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.consistency import SelfConsistencyJudge

    return SelfConsistencyJudge(config.extractor)


def _ensemble(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    from autodidact.judges.ensemble import EnsembleJudge, PersonaJudge

    members = [build_judge(member, engine, tasks) for member in config.members]
    members += [PersonaJudge(engine, p, mode=config.mode, min_mass=config.min_score_mass) for p in config.personas]
    return EnsembleJudge(members, combine=config.combine)


# One record per judge: the name in the config -> how to build it.
JUDGES: dict[str, Callable[..., Judge]] = {
    "direct": _direct,
    "rubric": _rubric,
    "pairwise": _pairwise,
    "contrastive": _contrastive,
    "self_consistency": _self_consistency,
    "ensemble": _ensemble,
    "verifier": _verifier,
    "program": _program,
}


def build_judge(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    """The judge named by `config.method`, bound to an engine."""
    if config.method not in JUDGES:
        raise unknown_name("judge", config.method, JUDGES, field="judge.method")
    return JUDGES[config.method](config, engine, tasks)


__all__ = ["JUDGES", "Judge", "JudgeItem", "build_judge"]
