"""Judges: how the model evaluates its own outputs.

Every judge takes `JudgeItem`s and returns one `Judgment` per item, in order.
A judgment that fails (unparseable output, too little probability on the
score tokens) has `score=None`: it is counted and excluded from selection,
never read as 0. A judge never reads a score out of the text being judged:
scores come from the judge's own output slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from autodidact.config.judge import RunJudgeFields
from autodidact.errors import AutodidactError, unknown_name
from autodidact.judges.agreement import SemanticAgreementJudge
from autodidact.judges.base import Judge, JudgeItem, JudgeResult  # the contract; re-exported
from autodidact.judges.certainty import SelfCertaintyJudge
from autodidact.judges.consistency import SelfConsistencyJudge
from autodidact.judges.contrastive import ContrastiveJudge
from autodidact.judges.control import RandomJudge
from autodidact.judges.direct import DirectScoreJudge
from autodidact.judges.ensemble import EnsembleJudge, PersonaJudge
from autodidact.judges.pairwise import PairwiseJudge
from autodidact.judges.programmatic import ProgramJudge
from autodidact.judges.reverse_likelihood import ReverseLikelihoodJudge
from autodidact.judges.routing import TaskRoutedJudge
from autodidact.judges.rubric import RubricJudge
from autodidact.judges.self_examples import SelfExamplesJudge
from autodidact.judges.verifier import TaskVerifierJudge

if TYPE_CHECKING:
    from autodidact.config import JudgeBase as JudgeConfig  # any judge section: the run's, a member, a task's
    from autodidact.engines import Engine
    from autodidact.tasks import Task


# A judge section -> the engine its own `model` names (the loop: `judge_engine` on that section).
EngineFor = Callable[["JudgeConfig"], "Engine"]


def _direct(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return DirectScoreJudge(engine, mode=config.mode, batch_size=config.batch_size, min_mass=config.min_score_mass)


def _rubric(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return RubricJudge(
        engine,
        criteria=config.criteria,
        mode=config.mode,
        reasoning_tokens=config.reasoning_tokens,
        min_mass=config.min_score_mass,
    )


def _verifier(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return TaskVerifierJudge(tasks)


def _program(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return ProgramJudge(
        config.program, config.program_args, config.program_timeout, config.program_workers,
        memory_mb=config.program_memory_mb, network=config.program_network,
    )


def _random(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return RandomJudge()


def _self_certainty(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return SelfCertaintyJudge(engine, certainty=config.certainty)


def _reverse_likelihood(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return ReverseLikelihoodJudge(engine)


def _semantic_agreement(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return SemanticAgreementJudge(config.embedder)


def _self_examples(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return SelfExamplesJudge(
        engine, config.embedder, shots=config.shots, mode=config.mode, min_mass=config.min_score_mass
    )


def _pairwise(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
    return PairwiseJudge(
        engine,
        mode=config.mode,
        schedule=config.pairwise_schedule,
        k=config.pairwise_k,
        aggregate=config.pairwise_aggregate,
        min_mass=config.min_score_mass,
    )


def _contrastive(config: JudgeConfig, engine: Engine, tasks: dict[str, Task]) -> Judge:
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
    return SelfConsistencyJudge(config.extractor, score=config.consistency_score)


def _ensemble(
    config: JudgeConfig, engine: Engine, tasks: dict[str, Task], engine_for: EngineFor | None = None
) -> Judge:
    members = [
        build_judge(member, _section_engine(f"judge.members[{i}]", member, engine, engine_for), tasks, engine_for)
        for i, member in enumerate(config.members)
    ]
    members += [PersonaJudge(engine, p, mode=config.mode, min_mass=config.min_score_mass) for p in config.personas]
    return EnsembleJudge(members, combine=config.combine)


def _section_engine(field: str, section: JudgeConfig, engine: Engine, engine_for: EngineFor | None) -> Engine:
    """A nested judge section's engine (an ensemble member, a per-task judge): its own `model`'s, else `engine`."""
    if section.model is None:
        return engine
    if engine_for is None:  # never run it on `engine` instead: that would be another judge than the one configured
        raise AutodidactError(
            f"{field}.model: this caller cannot load a nested judge's own model; "
            "run it through a run (autodidact run) or remove that model."
        )
    try:
        return engine_for(section)
    except AutodidactError as exc:
        raise AutodidactError(f"{field}: {exc}") from None


def _routed(config: JudgeConfig, engine: Engine, tasks: dict[str, Task], engine_for: EngineFor | None) -> Judge:
    unknown = sorted(set(config.tasks) - set(tasks))
    if unknown:
        raise AutodidactError(
            f"judge.tasks: {unknown[0]!r} is not a task of this run (its tasks: {', '.join(sorted(tasks)) or 'none'}); "
            "use one of those names."
        )
    routes = {
        name: build_judge(section, _section_engine(f"judge.tasks.{name}", section, engine, engine_for), tasks, engine_for)
        for name, section in config.tasks.items()
    }
    default = build_judge(config.model_copy(update={"tasks": {}}), engine, tasks, engine_for)
    return TaskRoutedJudge(default, routes)


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
    "random": _random,
    "self_certainty": _self_certainty,
    "reverse_likelihood": _reverse_likelihood,
    "semantic_agreement": _semantic_agreement,
    "self_examples": _self_examples,
}


def build_judge(
    config: JudgeConfig, engine: Engine, tasks: dict[str, Task], engine_for: EngineFor | None = None
) -> Judge:
    """The judge named by `config.method`, bound to an engine.

    Args:
        config: the judge section.
        engine: the engine the judge runs on (the one `config.model` names).
        tasks: the run's tasks, by name (the verifier judge grades with them).
        engine_for: builds the engine of a nested judge section (an ensemble member, a per-task
            judge) that names its own `model`; without it such a section is an error, never run on `engine`.

    Raises:
        AutodidactError: an unknown method, or a member's own model that cannot be used.
    """
    if config.method not in JUDGES:
        raise unknown_name("judge", config.method, JUDGES, field="judge.method")
    if isinstance(config, RunJudgeFields) and config.tasks:  # a judge per task, this section's for the rest
        return _routed(config, engine, tasks, engine_for)
    if config.method == "ensemble":  # the one judge made of judges: each member may name its own model
        return _ensemble(config, engine, tasks, engine_for)
    return JUDGES[config.method](config, engine, tasks)


__all__ = ["JUDGES", "EngineFor", "Judge", "JudgeItem", "JudgeResult", "build_judge"]
