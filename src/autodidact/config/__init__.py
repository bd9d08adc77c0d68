"""One typed, validated `RunConfig`: a YAML file plus `--set a.b=c` overrides.

A leaf: this package imports nothing of the project but `autodidact.errors`. Names of judges,
tasks, extractors and verifier built-ins are checked against the strings in `registry.py`;
the components look their implementations up themselves. Every field carries help text (it
becomes the comment in `autodidact init`'s example file and in docs/CONFIG.md). Validation
errors become a one-line `AutodidactError` naming the field and the fix.

    base.py          Section, the shared ServerConfig
    registry.py      the names config accepts
    model.py         model: the policy, its engine and server
    sources.py       tasks: built-in tasks and sources
    judge_methods.py one class per judge method
    judge.py         the judge union, the run-level judge section
    training.py      generation, selection, training, evaluation, stopping
    monitors.py      monitors
    run.py           RunConfig, review, distributed
    yaml_safe.py     YAML within bounds: file size, alias expansion, duplicate keys refused
    overrides.py     `--set` overrides: parsed, and merged over the file (list entries by index)
    loading.py       load_config, read_config_file, validate_config, to_yaml, example_yaml
"""

from __future__ import annotations

from autodidact.config.base import Section, ServerConfig
from autodidact.config.judge import JudgeConfig, JudgeMember
from autodidact.config.judge_methods import (
    ContrastiveJudgeConfig,
    DirectJudgeConfig,
    EnsembleJudgeConfig,
    JudgeBase,
    JudgeServerConfig,
    PairwiseJudgeConfig,
    ProgramJudgeConfig,
    RandomJudgeConfig,
    RubricJudgeConfig,
    SelfConsistencyJudgeConfig,
    VerifierJudgeConfig,
    is_server_url,
)
from autodidact.config.judge_signals import (
    ReverseLikelihoodJudgeConfig,
    SelfCertaintyJudgeConfig,
    SelfExamplesJudgeConfig,
    SemanticAgreementJudgeConfig,
)
from autodidact.config.loading import example_yaml, judge_config, load_config, parse_overrides, to_yaml, validate_config
from autodidact.config.model import ModelConfig, PolicyServerConfig, VLLMConfig
from autodidact.config.monitors import (
    BiasConfig,
    DiversityConfig,
    JudgeReliabilityConfig,
    MonitorsConfig,
    ReturnsConfig,
    RewardHackingConfig,
    SignalDecayConfig,
)
from autodidact.config.run import DistributedConfig, ReviewConfig, RunConfig
from autodidact.config.sources import (
    DocumentsSourceConfig,
    FileSourceConfig,
    LogsSourceConfig,
    SelfInstructSourceConfig,
    SourceConfig,
    TasksConfig,
)
from autodidact.config.training import (
    EvaluationConfig,
    GenerationConfig,
    SelectionConfig,
    StoppingConfig,
    TrainingConfig,
)

__all__ = [
    "BiasConfig",
    "ContrastiveJudgeConfig",
    "DirectJudgeConfig",
    "DistributedConfig",
    "DiversityConfig",
    "DocumentsSourceConfig",
    "EnsembleJudgeConfig",
    "EvaluationConfig",
    "FileSourceConfig",
    "GenerationConfig",
    "JudgeBase",
    "JudgeConfig",
    "JudgeMember",
    "JudgeReliabilityConfig",
    "JudgeServerConfig",
    "LogsSourceConfig",
    "ModelConfig",
    "MonitorsConfig",
    "PairwiseJudgeConfig",
    "PolicyServerConfig",
    "ProgramJudgeConfig",
    "ReturnsConfig",
    "ReviewConfig",
    "RewardHackingConfig",
    "RandomJudgeConfig",
    "ReverseLikelihoodJudgeConfig",
    "SelfCertaintyJudgeConfig",
    "SelfExamplesJudgeConfig",
    "SemanticAgreementJudgeConfig",
    "SignalDecayConfig",
    "RubricJudgeConfig",
    "RunConfig",
    "Section",
    "SelectionConfig",
    "SelfConsistencyJudgeConfig",
    "SelfInstructSourceConfig",
    "ServerConfig",
    "SourceConfig",
    "StoppingConfig",
    "TasksConfig",
    "TrainingConfig",
    "VLLMConfig",
    "VerifierJudgeConfig",
    "example_yaml",
    "is_server_url",
    "judge_config",
    "load_config",
    "parse_overrides",
    "to_yaml",
    "validate_config",
]
