"""The `Task` protocol: where prompts come from and how answers are checked.

Every task builds disjoint train and held-out prompts and grades a response.
A task that can do more declares it by implementing one of the protocols
below; the loop asks with `isinstance`, never by probing attributes:

- `GrowsPrompts.grow(...) -> Grown`: new training prompts for an iteration
  (self-written prompts) with its filter counts; they are stored with the
  iteration's samples.
- `Responds.respond(...)`: answer the task's prompts in a way of its own (the
  document task's search tool), in generation and in held-out evaluation alike.
- `Restores.restore(prompts, seed)`: on resume, when the prompts are read from
  the store and `build` is not called, rebuild what `build` made beside them
  (the document task's search index) without writing prompts again.
- `Paraphrases.build_paraphrased(...)`: a second held-out set (split
  "heldout_paraphrase") of problems neither split of `build` holds, worded in
  phrasings the training prompts never use, so a gain can be told apart from
  learning the prompt templates. The built-in tasks have it, and documents
  with answer-first questions (the closed-book recall set); tasks from the
  user's other data (files, logs, self-written prompts) do not.
- `CountsBuild.stats`: what `build` found, wrote and dropped (the document
  task's facts and filters), stored with the prompts.
- `ShapesTraining.training_examples(example, prompt)`: the SFT examples one
  selected sample becomes (the document task: its search transcript with the
  results kept out of the loss, and the answer asked closed-book in every
  training wording of the fact).
- `OffersSearch`: a `search` tool over the task's documents for online
  training (GRPO).

`Prompt.meta["deployed_response"]`, a reply already given in deployment
(logged conversations), joins the generated samples as one more candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from autodidact.records import Prompt, SFTExample

if TYPE_CHECKING:
    from autodidact.engines import Completion, Engine, SamplingParams


@runtime_checkable
class Task(Protocol):
    """A source of prompts with a verifier.

    `build` returns disjoint train and held-out prompts, deterministically for a
    seed. `verify` grades one response: 1.0 pass, 0.0 fail, None when the
    verifier cannot grade it (then the task is measured by the judge score).
    Verifiers grade held-out evaluation only, never training, unless the user
    picks the verifier as the judge.
    """

    name: str

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]: ...

    def verify(self, prompt: Prompt, response: str) -> float | None: ...


# --- optional abilities: a task declares one by having the method; the loop asks with isinstance ---------


@dataclass(frozen=True)
class Grown:
    """What `GrowsPrompts.grow` returns: the new training prompts and its filter counts (stored as stage info)."""

    prompts: list[Prompt]
    stats: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class GrowsPrompts(Protocol):
    """Writes new training prompts each iteration (self-instruct)."""

    def grow(
        self, engine: Engine, pool: Sequence[Prompt], avoid: Sequence[Prompt], iteration: int, seed: int
    ) -> Grown: ...


@runtime_checkable
class Responds(Protocol):
    """Answers its prompts in a way of its own (the documents task's search tool)."""

    def respond(
        self, engine: Engine, prompts: Sequence[Prompt], params: SamplingParams, desc: str
    ) -> list[list[Completion]]: ...


@runtime_checkable
class Restores(Protocol):
    """Rebuilds, on resume, what `build` made beside the stored prompts (a search index)."""

    def restore(self, prompts: Sequence[Prompt], seed: int) -> None: ...


@runtime_checkable
class Paraphrases(Protocol):
    """Builds a reworded held-out set (split "heldout_paraphrase"); the built-in tasks do."""

    def build_paraphrased(self, train_size: int, heldout_size: int, size: int, seed: int) -> list[Prompt]: ...


@runtime_checkable
class OffersSearch(Protocol):
    """Hands online training (GRPO) a `search` tool over its documents."""

    max_tool_calls: int

    def search_tool(self) -> Any: ...

    def tool_prompt(self, prompt: Prompt) -> Prompt: ...


@runtime_checkable
class ShapesTraining(Protocol):
    """Turns one selected sample into the SFT examples trained on (at training time; the store keeps the sample)."""

    def training_examples(self, example: SFTExample, prompt: Prompt) -> list[SFTExample]: ...


@runtime_checkable
class CountsBuild(Protocol):
    """Counts what `build` found, wrote and dropped (the run stores them as meta `task_stats/<task>`)."""

    stats: dict[str, int]
