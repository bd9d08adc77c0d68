"""The engine protocol and what engines exchange: sampling parameters, completions, failed rows.

See the package docstring (`autodidact.engines`) for the failure contract.
"""


from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

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
    error: str | None = None  # set when the request failed; text is then empty


class EngineError(Exception):
    """A request an engine could not serve; its message is the reason recorded in the judgment."""


class FailedRow(list):
    """A `continuation_logprobs` row for a failed request: -inf for every continuation, and the reason."""

    def __init__(self, width: int, error: str):
        super().__init__([-math.inf] * width)
        self.error = error


def request_error(result: Any) -> str | None:
    """Why a request failed, or None: `result` is a Completion, a prompt's completions, or a logprob row."""
    if isinstance(result, (Completion, FailedRow)):
        return result.error
    if isinstance(result, Sequence) and result and isinstance(result[0], Completion):
        return result[0].error
    return None


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


class ResponseCertainty(NamedTuple):
    """How sure the model is of a response, over its tokens (`MeasuresCertainty.response_certainty`).

    Both means are NaN for a response of no tokens.
    """

    kl_uniform: float  # mean over the response's tokens of KL(uniform || next-token distribution), in nats
    mean_logprob: float  # mean log P(token | prompt, response so far)
    tokens: int  # the response's tokens
    log_vocab: float  # log V (V: the model's logit width), the KL of a distribution on one token from uniform


@runtime_checkable
class MeasuresCertainty(Protocol):
    """An engine that reads the model's whole next-token distribution at every response token.

    A server returns a few top log-probabilities at most, so only in-process engines have it.
    """

    def response_certainty(
        self, prompts: Sequence[str], responses: Sequence[str], desc: str = "measuring certainty"
    ) -> list[ResponseCertainty]:
        """For each rendered prompt and its response, teacher-forced: one `ResponseCertainty`."""
        ...


@runtime_checkable
class CountsTokens(Protocol):
    """An engine whose tokenizer is at hand, so a text's length in tokens can be read."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone, without special tokens."""
        ...


@runtime_checkable
class ServesCheckpoints(Protocol):
    """An engine whose weights live outside the trained model object (a server, vLLM, Ray replicas).

    The in-process `TransformersEngine` shares the trained model, so it sees new weights at once;
    these engines are handed each iteration's checkpoint (a PEFT adapter folder, or full weights)
    after training, before the iteration's held-out evaluation.
    """

    def load_checkpoint(self, checkpoint: Path, iteration: int) -> None:
        """Serve `checkpoint` (the weights after `iteration`'s training) for every later request."""
        ...

    def serve_base(self) -> None:
        """Serve the base model again (a rollback to iteration 0)."""
        ...




@runtime_checkable
class Sleeps(Protocol):
    """An engine that can free the accelerator while the trainer runs (vLLM); the next request wakes it."""

    def sleep(self) -> None: ...


@runtime_checkable
class Closes(Protocol):
    """An engine holding resources outside this process (Ray replicas, a vLLM engine, a server client)."""

    def close(self) -> None: ...
