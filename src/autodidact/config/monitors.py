"""The failure modes, measured every iteration: reward hacking, bias, mode collapse, returns, judge reliability,
and the decay of the agreement signal."""

from __future__ import annotations

from pydantic import Field

from autodidact.config.base import Section


class RewardHackingConfig(Section):
    window: int = Field(
        2, ge=1, le=1000, description="Alert when the judge score rose while the held-out metric was flat or fell for this many iterations in a row."
    )
    tolerance: float = Field(
        0.0, ge=0.0, description="A held-out change at or below this counts as flat (0-1 scale of the held-out metric)."
    )
    stop: bool = Field(False, description="Stop the run when the alert is raised.")
    reference_judge: str | None = Field(
        None,
        description="A fixed judge for tasks without a verifier: a model ('default', a path, a .gguf) or an "
        "OpenAI-compatible server URL (with judge.server: its model_name, api_key_env, ...). It scores the held-out "
        "answers every iteration and is never trained; its score stands in for the pass rate.",
    )


class BiasConfig(Section):
    min_position_consistency: float = Field(
        0.6, ge=0.0, le=1.0, description="Alert when pairwise judging agrees with itself across both orders less often than this."
    )
    max_length_correlation: float = Field(
        0.5, ge=0.0, le=1.0, description="Alert when |Spearman correlation| of judge score and response length exceeds this."
    )
    max_disagreement: float = Field(
        3.0, ge=0.0, le=10.0, description="Alert when ensemble members' scores of one sample differ by more than this on average."
    )
    stop: bool = Field(False, description="Stop the run when a bias alert is raised.")


class DiversityConfig(Section):
    prompts: int = Field(
        16, ge=0, le=10_000, description="Held-out prompts sampled every iteration to measure diversity (0 turns the probe off)."
    )
    samples: int = Field(4, ge=2, le=64, description="Samples per probe prompt, at generation.temperature.")
    embedder: str = Field(
        "default",
        description="Sentence embedder for similarity: 'default' (the bundled all-MiniLM-L6-v2), a "
        "sentence-transformers model directory, or 'none' to skip embedding similarity.",
    )
    max_drop: float = Field(
        0.3, ge=0.0, le=1.0, description="Alert when a diversity measure falls by more than this share of its iteration-0 value."
    )
    stop: bool = Field(False, description="Stop the run when the mode-collapse alert is raised.")


class ReturnsConfig(Section):
    window: int = Field(3, ge=2, le=1000, description="Iterations whose gains make the trend.")
    stop: bool = Field(False, description="Stop the run when gains are shrinking and below stopping.min_delta.")


class JudgeReliabilityConfig(Section):
    min_auc: float | None = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Alert, for each task, when the self-judge's held-out scores rank passing above failing answers "
        "with a ROC AUC (judge_auc against the task's verifier; 0.5 = chance) below this: there a rise in the judge's "
        "scores is no evidence of improvement. Unset turns the check off.",
    )
    stop: bool = Field(False, description="Stop the run when the self-judge is unreliable on a task.")


class SignalDecayConfig(Section):
    prompts: int = Field(
        16,
        ge=0,
        le=10_000,
        description="Held-out prompts per task judged by self_consistency (judge.method, or judge.tasks) sampled every "
        "iteration to follow the agreement signal: the same prompts, temperature and seed each time. 0 turns the "
        "probe off; a run without such a task never samples it.",
    )
    samples: int | None = Field(
        None, ge=2, le=64, description="Samples per probe prompt, at generation.temperature; unset: generation.samples_per_prompt."
    )
    min_share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="A probe prompt counts as kept when its majority answer has at least this share of the "
        "extracted answers: the default recipe's floor (consistency_score share, selection.min_score 5). Fixed, so "
        "the figure compares across iterations whatever selection.min_score_schedule does.",
    )
    max_flip_rate: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Alert when more than this share of the probe prompts' majority answers changed since the "
        "previous iteration (among prompts with a majority both times).",
    )
    max_drop: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Alert when the share of kept probe answers the task's verifier passes (held-out: training "
        "never sees it) falls by more than this share of its iteration-0 value.",
    )
    stop: bool = Field(False, description="Stop the run when the signal-decay alert is raised.")


class MonitorsConfig(Section):
    enabled: bool = Field(True, description="Measure the failure modes after every evaluation.")
    reward_hacking: RewardHackingConfig = Field(default_factory=RewardHackingConfig, description="Judge score vs held-out metric.")
    bias: BiasConfig = Field(default_factory=BiasConfig, description="Position, length and perspective bias of the judge.")
    diversity: DiversityConfig = Field(default_factory=DiversityConfig, description="Mode collapse: diversity of samples.")
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig, description="Diminishing returns: gain per iteration.")
    judge_reliability: JudgeReliabilityConfig = Field(
        default_factory=JudgeReliabilityConfig, description="Self-judge vs the held-out verifiers, per task."
    )
    signal_decay: SignalDecayConfig = Field(
        default_factory=SignalDecayConfig, description="Agreement among a probe's samples: majority flips, kept, right among kept."
    )


__all__ = [
    "BiasConfig",
    "DiversityConfig",
    "JudgeReliabilityConfig",
    "MonitorsConfig",
    "ReturnsConfig",
    "RewardHackingConfig",
    "SignalDecayConfig",
]
