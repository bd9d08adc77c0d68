"""Engines turn requests into text or log-probabilities.

One protocol, several implementations: in-process transformers today; an
OpenAI-compatible server or vLLM slot in behind the same three methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from autodidact.records import Message


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: `temperature=0` means greedy decoding."""

    n: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    num_tokens: int


@runtime_checkable
class Engine(Protocol):
    """What the loop needs from a model backend."""

    supports_logprobs: bool

    def render(self, messages: Sequence[Message]) -> str:
        """Apply the chat template, ending where the assistant's reply begins."""
        ...

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating") -> list[list[Completion]]:
        """`params.n` completions for each rendered prompt, in prompt order."""
        ...

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        """log P(continuation | prompt) for every prompt x continuation, shape (P, C)."""
        ...


from autodidact.engines.transformers_engine import TransformersEngine  # noqa: E402

__all__ = ["Completion", "Engine", "SamplingParams", "TransformersEngine"]
