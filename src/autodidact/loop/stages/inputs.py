"""What the stages read from the store: an iteration's prompt draw, its new prompts, its training samples,
the examples it trains on.

The draw is a function of the stored training prompts and the iteration
alone, so a stage that needs it again (GRPO's train stage) draws again what
the generate stage drew, from the store, after a kill as in one process.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from autodidact.config import RunConfig
from autodidact.engines import Engine
from autodidact.records import PARAPHRASE_SPLIT, Prompt, Sample, SFTExample
from autodidact.store import RunStore
from autodidact.tasks import Task
from autodidact.tasks.base import Grown, GrowsPrompts, ShapesTraining


def draw_prompts(store: RunStore, config: RunConfig, iteration: int, written: Sequence[Prompt] = ()) -> list[Prompt]:
    """Each iteration trains on a fresh draw from each task's training pool (`written`: its new, unstored prompts).

    A task contributes `prompts_per_iteration` x its weight prompts.
    """
    rng = random.Random(config.seed * 1_000_003 + iteration)
    by_task: dict[str, list[Prompt]] = defaultdict(list)
    for p in [*store.prompts(split="train"), *written]:
        by_task[p.task].append(p)
    t = config.tasks
    drawn = []
    for name in t.all_names():
        k = max(1, round(t.prompts_per_iteration * t.weight(name)))
        drawn += rng.sample(by_task[name], min(k, len(by_task[name])))
    return drawn


def grow_prompts(
    store: RunStore, tasks: Mapping[str, Task], engine: Engine, iteration: int, seed: int
) -> tuple[list[Prompt], dict[str, int]]:
    """New training prompts from tasks that write their own (self-instruct), and their filter counts by task."""
    written: list[Prompt] = []
    stats: dict[str, int] = {}
    avoid = store.prompts(split="heldout") + store.prompts(split=PARAPHRASE_SPLIT)
    for name, task in tasks.items():
        if not isinstance(task, GrowsPrompts):
            continue
        grown: Grown = task.grow(engine, store.prompts(split="train", task=name), avoid, iteration, seed)
        written += grown.prompts
        stats |= {f"{name}/{key}": value for key, value in grown.stats.items()}
        stats[f"{name}/written"] = len(grown.prompts)
    return written, stats


def train_samples(store: RunStore, iteration: int) -> tuple[dict[str, Prompt], list[Sample]]:
    """The training prompts by id, and the iteration's samples that answer one (not the held-out answers)."""
    prompts = {p.id: p for p in store.prompts(split="train")}
    return prompts, [s for s in store.samples(iteration) if s.prompt_id in prompts]


def training_examples(
    store: RunStore, config: RunConfig, iteration: int, tasks: Mapping[str, Task] | None = None
) -> list[SFTExample]:
    """The SFT examples an iteration trains on: its selection, then with `selection.replay_base` iteration 1's.

    Iteration 1's examples are the base model's own samples, kept by the judge before any training moved it.
    Both come from the store, so a resumed run trains on the same set. An example of iteration 1 whose
    prompt and text this iteration selected again is trained on once. A task that shapes its training
    (`ShapesTraining`, given in `tasks`) turns each of its examples into its own; equal examples are kept once.
    """
    examples = store.selection(iteration)
    if config.selection.replay_base and iteration > 1:
        seen = {(e.prompt_id, e.completion) for e in examples}
        examples = examples + [e for e in store.selection(1) if (e.prompt_id, e.completion) not in seen]
    shaping = {name: task for name, task in (tasks or {}).items() if isinstance(task, ShapesTraining)}
    if not shaping:
        return examples
    shaped: list[SFTExample] = []
    seen_texts: set[tuple[str, str]] = set()
    prompts = {p.id: p for p in store.prompts()}  # one read, not a query per example
    for example in examples:
        prompt = prompts[example.prompt_id]
        task = shaping.get(prompt.task)
        for made in task.training_examples(example, prompt) if task is not None else [example]:
            key = (repr(made.messages), made.completion)
            if key not in seen_texts:
                seen_texts.add(key)
                shaped.append(made)
    return shaped
