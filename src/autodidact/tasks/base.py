"""The `Task` protocol: where prompts come from and how answers are checked."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from autodidact.records import Prompt


@runtime_checkable
class Task(Protocol):
    """A source of prompts with a verifier.

    `build` returns disjoint train and held-out prompts, deterministically for a
    seed. `verify` grades one response: 1.0 pass, 0.0 fail, None when the
    verifier cannot grade it. Verifiers grade held-out evaluation only, never
    training, unless the user picks the verifier as the judge.
    """

    name: str

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]: ...

    def verify(self, prompt: Prompt, response: str) -> float | None: ...
