"""Config classes of the label-free signals screened in issue 20: each method's own fields.

`self_certainty` and `reverse_likelihood` read the model's probabilities of the response or of
the instruction; `semantic_agreement` compares a prompt's samples by sentence embeddings;
`self_examples` is the direct judge shown the model's own most and least agreed-on samples of
other prompts as graded examples. docs/JUDGES.md describes each. The judges are in
`autodidact.judges` (one module each); this module names them only by `method`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from autodidact.config.judge_base import JudgeBase


def _embedder_field() -> Any:
    return Field(
        "default",
        description="Sentence embedder that compares a prompt's samples: 'default' (the bundled all-MiniLM-L6-v2) "
        "or a local sentence-transformers model directory (as monitors.diversity.embedder; 'none' is not allowed).",
    )


def _needs_an_embedder(embedder: str) -> str:
    if embedder.strip().lower() == "none":
        raise ValueError(
            "this method compares samples by their embeddings; use 'default' or a model directory, not 'none'"
        )
    return embedder


class SelfCertaintyJudgeConfig(JudgeBase):
    """method: self_certainty. The model's confidence over its own response tokens (Intuitor)."""

    method: Literal["self_certainty"] = Field(
        "self_certainty",
        description="The model's confidence over its own response tokens, read from its next-token distributions "
        "(one forward pass per sample; needs an in-process transformers engine).",
    )
    certainty: Literal["kl_uniform", "mean_logprob"] = Field(
        "kl_uniform",
        description="'kl_uniform': mean over the response tokens of KL(uniform || next-token distribution), as in "
        "Intuitor (arXiv 2505.19590); score 10 x KL / (KL + log V). 'mean_logprob': the mean log-probability of the "
        "response's tokens; score 10 x exp(mean), the geometric-mean token probability.",
    )


class ReverseLikelihoodJudgeConfig(JudgeBase):
    """method: reverse_likelihood. How well the response predicts its own instruction (back-translation)."""

    method: Literal["reverse_likelihood"] = Field(
        "reverse_likelihood",
        description="How well the response predicts its instruction: 10 x sigmoid of the per-token PMI "
        "[log P(instruction | response) - log P(instruction)] / instruction tokens (teacher-forced).",
    )


class SemanticAgreementJudgeConfig(JudgeBase):
    """method: semantic_agreement. Embedding agreement with the other samples of the prompt."""

    method: Literal["semantic_agreement"] = Field(
        "semantic_agreement",
        description="10 x the mean cosine similarity of a sample's embedding with the other samples of its prompt "
        "(clipped to [0, 1]): self-consistency for free-form answers.",
    )
    embedder: str = _embedder_field()

    _embedder = field_validator("embedder")(_needs_an_embedder)


class SelfExamplesJudgeConfig(JudgeBase):
    """method: self_examples. The direct judge with the model's own samples of other prompts as graded examples."""

    method: Literal["self_examples"] = Field(
        "self_examples",
        description="The direct 0-10 judge, shown as examples the most agreed-on sample (scored 9) and the least "
        "(scored 2) of other prompts of the call (semantic agreement; never the judged prompt's own).",
    )
    embedder: str = _embedder_field()
    shots: int = Field(
        1, ge=1, le=8, description="Example pairs (a good and a poor sample of one other prompt) per judge prompt."
    )

    _embedder = field_validator("embedder")(_needs_an_embedder)


SIGNAL_CLASSES: tuple[type[JudgeBase], ...] = (
    SelfCertaintyJudgeConfig,
    ReverseLikelihoodJudgeConfig,
    SemanticAgreementJudgeConfig,
    SelfExamplesJudgeConfig,
)

__all__ = [
    "SIGNAL_CLASSES",
    "ReverseLikelihoodJudgeConfig",
    "SelfCertaintyJudgeConfig",
    "SelfExamplesJudgeConfig",
    "SemanticAgreementJudgeConfig",
]
