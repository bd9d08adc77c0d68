"""The judge section: a union of the method classes (`judge_methods.py`), told apart by `method`.

`judge:` in a run config is one of the `*RunJudgeConfig` classes: its method's fields plus what
only the run's judge has (`max_failed_share`, and `tasks`, a judge per task). Ensemble members and
per-task judges are `JudgeMember`s: the method classes alone, so a nested `max_failed_share` or a
per-task judge with tasks of its own cannot be written. A key of another method is refused with a
line naming the method it belongs to (`foreign_key_message`).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag

from autodidact.config.base import Section
from autodidact.config.judge_methods import (
    METHOD_CLASSES,
    ContrastiveJudgeConfig,
    DirectJudgeConfig,
    EnsembleJudgeConfig,
    JudgeBase,
    PairwiseJudgeConfig,
    ProgramJudgeConfig,
    RandomJudgeConfig,
    RubricJudgeConfig,
    SelfConsistencyJudgeConfig,
    VerifierJudgeConfig,
)
from autodidact.config.judge_signals import (
    ReverseLikelihoodJudgeConfig,
    SelfCertaintyJudgeConfig,
    SelfExamplesJudgeConfig,
    SemanticAgreementJudgeConfig,
)
from autodidact.config.registry import JUDGE_METHODS
from autodidact.errors import unknown_name

TAG_PREFIX = "method="  # a union tag in an error's location; no task or field name contains '='


def _method_of(section: Any) -> str:
    if isinstance(section, dict):
        return section.get("method", "direct")  # 'direct' when method is left out
    return getattr(section, "method", "")


def _tag(section: Any) -> str:
    return TAG_PREFIX + str(_method_of(section))


def _known_method(section: Any) -> Any:
    if not isinstance(section, (dict, JudgeBase)):
        raise ValueError("expected a judge section (a mapping such as {method: direct})")
    method = _method_of(section)
    if method not in JUDGE_METHODS:
        raise unknown_name("judge", str(method), JUDGE_METHODS)  # propagates: validate_config prefixes "config: "
    return section


def _union(classes: tuple[type[JudgeBase], ...]) -> Any:
    """`classes` as a union told apart by `method` (default 'direct')."""
    tagged = tuple(Annotated[cls, Tag(TAG_PREFIX + cls.model_fields["method"].default)] for cls in classes)
    return Annotated[Union[tagged], Discriminator(_tag), BeforeValidator(_known_method)]  # noqa: UP007


# An ensemble member or a per-task judge.
JudgeMember = _union(METHOD_CLASSES)
EnsembleJudgeConfig.model_rebuild(_types_namespace={"JudgeMember": JudgeMember})


class RunJudgeFields(Section):
    """What only the run's own judge section has."""

    tasks: dict[str, JudgeMember] = Field(
        default_factory=dict,
        description="A judge per task: task name -> a judge section of its own (fields it leaves out take their "
        "defaults; model as for ensemble members) that judges that task's samples; other tasks use this section. "
        "E.g. {arithmetic: {method: self_consistency, consistency_score: share}}: votes where answers can be "
        "extracted, this judge elsewhere.",
    )
    max_failed_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="If more than this share of an iteration's training judgments fail (score None), the run "
        "stops with an error naming the reasons, instead of training on what is left. Read over the run's "
        "judgments together (per-task and member judges included).",
    )


# Run-level bases first: the method's own fields come first in a saved config.yaml.
class DirectRunJudgeConfig(RunJudgeFields, DirectJudgeConfig):
    """The run's judge section with method 'direct'."""


class RubricRunJudgeConfig(RunJudgeFields, RubricJudgeConfig):
    """The run's judge section with method 'rubric'."""


class PairwiseRunJudgeConfig(RunJudgeFields, PairwiseJudgeConfig):
    """The run's judge section with method 'pairwise'."""


class ContrastiveRunJudgeConfig(RunJudgeFields, ContrastiveJudgeConfig):
    """The run's judge section with method 'contrastive'."""


class SelfConsistencyRunJudgeConfig(RunJudgeFields, SelfConsistencyJudgeConfig):
    """The run's judge section with method 'self_consistency'."""


class EnsembleRunJudgeConfig(RunJudgeFields, EnsembleJudgeConfig):
    """The run's judge section with method 'ensemble'."""


class VerifierRunJudgeConfig(RunJudgeFields, VerifierJudgeConfig):
    """The run's judge section with method 'verifier'."""


class ProgramRunJudgeConfig(RunJudgeFields, ProgramJudgeConfig):
    """The run's judge section with method 'program'."""


class RandomRunJudgeConfig(RunJudgeFields, RandomJudgeConfig):
    """The run's judge section with method 'random'."""


class SelfCertaintyRunJudgeConfig(RunJudgeFields, SelfCertaintyJudgeConfig):
    """The run's judge section with method 'self_certainty'."""


class ReverseLikelihoodRunJudgeConfig(RunJudgeFields, ReverseLikelihoodJudgeConfig):
    """The run's judge section with method 'reverse_likelihood'."""


class SemanticAgreementRunJudgeConfig(RunJudgeFields, SemanticAgreementJudgeConfig):
    """The run's judge section with method 'semantic_agreement'."""


class SelfExamplesRunJudgeConfig(RunJudgeFields, SelfExamplesJudgeConfig):
    """The run's judge section with method 'self_examples'."""


RUN_CLASSES: tuple[type[JudgeBase], ...] = (
    DirectRunJudgeConfig,
    RubricRunJudgeConfig,
    PairwiseRunJudgeConfig,
    ContrastiveRunJudgeConfig,
    SelfConsistencyRunJudgeConfig,
    EnsembleRunJudgeConfig,
    VerifierRunJudgeConfig,
    ProgramRunJudgeConfig,
    RandomRunJudgeConfig,
    SelfCertaintyRunJudgeConfig,
    ReverseLikelihoodRunJudgeConfig,
    SemanticAgreementRunJudgeConfig,
    SelfExamplesRunJudgeConfig,
)

# The run's judge section (`RunConfig.judge`); also the type of any judge section a component reads.
JudgeConfig = _union(RUN_CLASSES)


# The old flat server keys of the judge section -> where they live now.
MOVED = {
    "model_name": "server.model_name",
    "api_key_env": "server.api_key_env",
    "tokenizer": "server.tokenizer",
    "server_concurrency": "server.concurrency",
    "server_timeout": "server.timeout",
    "server_max_retries": "server.max_retries",
    "server_top_logprobs": "server.top_logprobs",
}

_RUN_ONLY = set(RunJudgeFields.model_fields)
_OWNERS = {
    key: tuple(cls.model_fields["method"].default for cls in METHOD_CLASSES if key in cls.model_fields)
    for cls in METHOD_CLASSES
    for key in cls.model_fields
    if key not in JudgeBase.model_fields
}


def foreign_key_message(section: str, method: str, key: str) -> str | None:
    """The one-line error for `key`, unknown in the judge section at `section` with method `method`.

    None when the key belongs to no judge section (a plain typo: the generic message applies).
    """
    nested = section != "judge"
    if key in MOVED:
        return f"{section}.{key} moved to {section}.{MOVED[key]} (with a server URL in {section}.model); set it there."
    if key == "max_failed_share" and nested:
        return (
            f"{section}.max_failed_share is not used: the failure policy reads the run's judgments together; "
            "set judge.max_failed_share instead."
        )
    if key == "tasks" and nested:
        return f"{section} has tasks of its own; give each task one judge section (judge.tasks is one level deep)."
    owners = _OWNERS.get(key)
    if not owners or key in _RUN_ONLY:
        return None
    names = " or ".join(f"'{m}'" for m in owners)
    return (
        f"{section}.{key} belongs to method {names}, not '{method}'; "
        f"set {section}.method={owners[0]} or remove it."
    )


__all__ = [
    "RUN_CLASSES",
    "TAG_PREFIX",
    "ContrastiveRunJudgeConfig",
    "DirectRunJudgeConfig",
    "EnsembleRunJudgeConfig",
    "JudgeConfig",
    "JudgeMember",
    "PairwiseRunJudgeConfig",
    "ProgramRunJudgeConfig",
    "RandomRunJudgeConfig",
    "ReverseLikelihoodRunJudgeConfig",
    "RubricRunJudgeConfig",
    "RunJudgeFields",
    "SelfCertaintyRunJudgeConfig",
    "SelfConsistencyRunJudgeConfig",
    "SelfExamplesRunJudgeConfig",
    "SemanticAgreementRunJudgeConfig",
    "VerifierRunJudgeConfig",
    "foreign_key_message",
]
