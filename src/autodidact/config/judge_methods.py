"""One config class per judge method, each holding only the fields that method reads.

What every method shares (`JudgeBase`, in `judge_base.py`): who judges (`model`, and `server` when that is a URL)
and how a score is read from the model (`mode`, `batch_size`, `min_score_mass`), which also
applies to the direct judge that scores held-out answers for a relative judge and to the
reference judge. The label-free signals of issue 20 (self-certainty, reverse likelihood, semantic
agreement, self-written examples) are in `judge_signals.py`. The union of these classes, and the
run-level section, are in `judge.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from autodidact.config.judge_base import JudgeBase, JudgeServerConfig, is_server_url
from autodidact.config.judge_signals import SIGNAL_CLASSES
from autodidact.config.registry import EXTRACTORS, PROGRAM_BUILTINS, is_dotted_path
from autodidact.errors import unknown_name

if TYPE_CHECKING:
    from autodidact.config.judge import JudgeMember


def _reasoning_tokens() -> Any:
    return Field(
        96, ge=1, le=8192, description="Token budget for the rubric judge's reasoning and the contrastive judge's explanation."
    )


class DirectJudgeConfig(JudgeBase):
    """method: direct. A 0-10 score for each sample alone."""

    method: Literal["direct"] = Field("direct", description="A 0-10 score for each sample alone (the default).")


class RubricJudgeConfig(JudgeBase):
    """method: rubric. Chain-of-thought over named criteria, then a score."""

    method: Literal["rubric"] = Field("rubric", description="Chain-of-thought over named criteria, then a score.")
    criteria: list[str] = Field(
        default_factory=lambda: ["follows the instruction", "correct", "concise"],
        description="Named criteria the rubric judge reasons through.",
    )
    reasoning_tokens: int = _reasoning_tokens()


class PairwiseJudgeConfig(JudgeBase):
    """method: pairwise. Picks the better of two samples of a prompt, in both orders."""

    method: Literal["pairwise"] = Field(
        "pairwise",
        description="Picks the better of two samples of a prompt, both orders; scores by Bradley-Terry or win rate.",
    )
    pairwise_schedule: Literal["round_robin", "cycle", "random_k"] = Field(
        "round_robin",
        description="Which pairs of a prompt's samples are compared (each in both orders). 'round_robin': every "
        "pair, n(n-1)/2; 'cycle': each sample vs the next, n pairs; 'random_k': each sample vs pairwise_k random others.",
    )
    pairwise_k: int = Field(2, ge=1, le=64, description="With schedule 'random_k': opponents per sample.")
    pairwise_aggregate: Literal["bradley_terry", "win_rate"] = Field(
        "bradley_terry",
        description="Per-sample score from the results (ties count half). 'bradley_terry': 10 x P(beating an "
        "opponent of the group's average fitted strength); 'win_rate': 10 x share of pairs won.",
    )


class ContrastiveJudgeConfig(PairwiseJudgeConfig):
    """method: contrastive. Explains why one sample beats the other, then picks (pairs as for pairwise)."""

    method: Literal["contrastive"] = Field(  # type: ignore[assignment]
        "contrastive", description="Explains why one sample beats the other, then picks; pairs as for pairwise."
    )
    reasoning_tokens: int = _reasoning_tokens()


class SelfConsistencyJudgeConfig(JudgeBase):
    """method: self_consistency. Agreement with the majority answer among a prompt's samples."""

    method: Literal["self_consistency"] = Field(
        "self_consistency", description="Agreement with the majority answer among a prompt's samples."
    )
    extractor: str = Field(
        "last_number",
        description="How the final answer is read from a sample: 'last_number', 'boxed' (\\boxed{...}), "
        "'final_line', 'answer_tag' (after 'Answer:'), or a function 'package.module:function' (text -> answer or None).",
    )
    consistency_score: Literal["majority", "share"] = Field(
        "majority",
        description="'majority': 10 for a sample whose answer is the majority, else 0; 'share': 10 x the share of "
        "the prompt's answered samples that gave the same answer, so a selection.min_score keeps only answers the "
        "model gives confidently (e.g. 5: at least half agree).",
    )

    @field_validator("extractor")
    @classmethod
    def _known_extractor(cls, extractor: str) -> str:
        if extractor not in EXTRACTORS and not is_dotted_path(extractor):
            known = unknown_name("extractor", extractor, EXTRACTORS)
            raise ValueError(f"{known} Or give a function as 'package.module:function'")
        return extractor


class EnsembleJudgeConfig(JudgeBase):
    """method: ensemble. Several member judges or personas, combined."""

    method: Literal["ensemble"] = Field("ensemble", description="Several member judges or personas, combined.")
    members: list[JudgeMember] = Field(
        default_factory=list,
        description="The member judges, each a judge section of its own (fields it leaves out take their defaults, "
        "except model: a member without one runs on the ensemble's judge model), e.g. "
        "[{method: direct}, {method: rubric, criteria: [correct], model: default}].",
    )
    personas: list[str] = Field(
        default_factory=list,
        description="Each persona adds a direct-judge member whose prompt starts with it (e.g. 'You are a "
        "meticulous math teacher.'); uses this section's mode and min_score_mass.",
    )
    combine: Literal["mean", "min", "majority", "product"] = Field(
        "mean",
        description="How member scores combine per sample (failed members skipped): 'mean', 'min', 'majority' "
        "(10 if more members score above 5 than below, 0 if fewer, 5 on a tie), or 'product' (the geometric "
        "mean, 10 x prod(s / 10) ** (1 / n): high only where every member is, e.g. consistency x certainty).",
    )

    @model_validator(mode="after")
    def _has_members(self) -> EnsembleJudgeConfig:
        if not self.members and not self.personas:
            raise ValueError("method 'ensemble' needs at least one entry in members or personas")
        return self


class VerifierJudgeConfig(JudgeBase):
    """method: verifier. The task's own verifier grades: a supervised upper bound, not self-improvement."""

    method: Literal["verifier"] = Field(
        "verifier", description="The task's verifier grades; a supervised upper bound, not self-improvement."
    )


class ProgramJudgeConfig(JudgeBase):
    """method: program. A Python verifier function grades each sample."""

    method: Literal["program"] = Field("program", description="A Python verifier function grades (see program).")
    program: str | None = Field(
        None,
        description="The verifier, a built-in ('exact_match', 'number_match', 'regex', 'json_keys', 'python_tests') "
        "or a function 'package.module:function' taking (prompt, response, reference, **program_args) and returning "
        "bool, float in [0, 1] or None; score = 10 x value. A function is imported, and its arguments checked, "
        "when the judge is built (before anything is trained).",
    )
    program_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for every call, e.g. {pattern: '^[0-9]+$'} for regex, {keys: [name, age]} "
        "for json_keys, {timeout: 5, memory_mb: 512} for python_tests.",
    )
    program_timeout: float = Field(
        10.0, gt=0.0, le=86_400.0, description="Seconds one verifier call may take; it is then killed and that judgment fails."
    )
    program_memory_mb: int = Field(
        2048, ge=0, le=1 << 20, description="Address-space limit of each verifier process in MiB (0 = none)."
    )
    program_network: bool = Field(
        False,
        description="Let verifier processes use the network. Off: they run in an empty network namespace where the "
        "platform allows it (Linux `unshare --net`).",
    )
    program_workers: int = Field(1, ge=1, le=64, description="Verifier processes run in parallel.")

    @field_validator("program")
    @classmethod
    def _known_program(cls, program: str | None) -> str | None:
        if program is not None and program not in PROGRAM_BUILTINS and not is_dotted_path(program):
            import difflib

            close = difflib.get_close_matches(program, PROGRAM_BUILTINS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"'{program}' is neither a built-in ({', '.join(PROGRAM_BUILTINS)}) nor a dotted path like "
                f"'my_pkg.checks:is_valid'.{hint}"
            )
        return program

    @model_validator(mode="after")
    def _has_program(self) -> ProgramJudgeConfig:
        if self.program is None:
            raise ValueError(
                "method 'program' needs judge.program: a built-in (exact_match, number_match, regex, json_keys, "
                "python_tests) or 'package.module:function'"
            )
        return self


class RandomJudgeConfig(JudgeBase):
    """method: random. The control arm: a uniformly random score, so top_k keeps a random sample per prompt."""

    method: Literal["random"] = Field(
        "random",
        description="The control arm: a random score per sample (no model pass), so selection.top_k 1 with no "
        "min_score trains on a uniformly random valid sample per prompt; compare a judged run with it.",
    )


METHOD_CLASSES: tuple[type[JudgeBase], ...] = (
    DirectJudgeConfig,
    RubricJudgeConfig,
    PairwiseJudgeConfig,
    ContrastiveJudgeConfig,
    SelfConsistencyJudgeConfig,
    EnsembleJudgeConfig,
    VerifierJudgeConfig,
    ProgramJudgeConfig,
    RandomJudgeConfig,
    *SIGNAL_CLASSES,
)

__all__ = [
    "METHOD_CLASSES",
    "ContrastiveJudgeConfig",
    "DirectJudgeConfig",
    "EnsembleJudgeConfig",
    "JudgeBase",
    "JudgeServerConfig",
    "PairwiseJudgeConfig",
    "ProgramJudgeConfig",
    "RandomJudgeConfig",
    "RubricJudgeConfig",
    "SelfConsistencyJudgeConfig",
    "VerifierJudgeConfig",
    "is_server_url",
]
