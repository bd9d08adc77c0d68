"""A run's prompts: built by every task and stored once; on resume, read back and what the tasks built
beside them (the documents task's search index) rebuilt without writing a prompt again.

A new run whose task holds out fewer prompts than `tasks.min_heldout` is refused here, before the
prompts are stored and before any generation: its held-out metric would measure nothing (no prompt at
all with a one-row file or `heldout_ratio: 0`, or an interval as wide as [6%, 79%] with three).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from autodidact.config import FileSourceConfig, SelfInstructSourceConfig, TasksConfig
from autodidact.errors import AutodidactError
from autodidact.loop.context import RunContext
from autodidact.records import Prompt
from autodidact.tasks.base import CountsBuild, Paraphrases, Restores


def prepare_prompts(ctx: RunContext) -> None:
    """Build and store every task's prompts (the first time), or restore the tasks from the stored ones.

    Raises:
        AutodidactError: a task holds out fewer prompts than `tasks.min_heldout` (nothing is stored then).
    """
    config, store = ctx.config, ctx.store
    if store.get_meta("prompts_ready"):
        for name, task in ctx.tasks.items():
            if isinstance(task, Restores):
                task.restore(store.prompts(task=name), seed=config.seed)
        return
    t = config.tasks
    prompts: list[Prompt] = []
    for task in ctx.tasks.values():
        train, heldout = task.build(t.train_size, t.heldout_size, seed=config.seed)
        check_heldout_size(t, task.name, train, heldout)
        prompts += train + heldout
        # The paraphrased held-out set: built-in tasks only. Stored in the same transaction as every other
        # prompt, so a resumed run neither lacks nor repeats it.
        if isinstance(task, Paraphrases) and t.paraphrase_size():
            prompts += task.build_paraphrased(t.train_size, t.heldout_size, t.paraphrase_size(), seed=config.seed)
    with store.transaction():
        store.add_prompts(prompts)
        for name, task in ctx.tasks.items():  # what a task counted while building (documents: facts, filters)
            if isinstance(task, CountsBuild) and task.stats:
                store.set_meta(f"task_stats/{name}", json.dumps(task.stats))
        store.set_meta("prompts_ready", "1")


def check_heldout_size(tasks: TasksConfig, name: str, train: Sequence[Prompt], heldout: Sequence[Prompt]) -> None:
    """Refuse a task whose held-out set is smaller than `tasks.min_heldout`, with the numbers and the fixes.

    Args:
        tasks: the config's tasks section (the minimum, the sizes and the sources' settings).
        name: the task's name (a built-in task or a source).
        train: the task's training prompts, as built.
        heldout: its held-out prompts, as built.

    Raises:
        AutodidactError: one line that names the task, its counts, the minimum and every fix.
    """
    have, need = len(heldout), tasks.min_heldout
    if have >= need:
        return
    index, source = next(((i, s) for i, s in enumerate(tasks.sources) if s.name == name), (None, None))
    anyway = f"set tasks.min_heldout={have} to run anyway"
    if not have:
        anyway = "set tasks.min_heldout=0 to train on it unmeasured"
    if source is None:  # a built-in task holds out exactly tasks.heldout_size prompts
        what, counts = f"task '{name}'", f"tasks.heldout_size {tasks.heldout_size}"
        fixes = f"Raise tasks.heldout_size to {need}, or {anyway}."
    else:
        total = len(train) + have
        path = source.seeds_path if isinstance(source, SelfInstructSourceConfig) else source.path
        where = f" in {path}" if path else ""  # self_instruct seeds may be written in the config
        what = f"source '{name}'"
        if isinstance(source, FileSourceConfig) and source.heldout_column is not None:
            column, value = source.heldout_column, source.heldout_value
            counts = f"{_prompts(total)}{where}, held out by column '{column}'"
            fixes = f"Add prompts, mark more rows '{value}' in column '{column}', or {anyway}."
        else:
            counts = f"{_prompts(total)}{where}, heldout_ratio {source.heldout_ratio:g}"
            fixes = f"Add prompts, raise tasks.sources.{index}.heldout_ratio, or {anyway}."
            if len({p.text for p in (*train, *heldout)}) < 2:
                fixes = f"Add prompts (a source holds out rows only when it has two different ones), or {anyway}."
    only = f"only {_prompts(have, 'held-out prompt')}" if have else "no held-out prompt"
    needed = f"at least {need} {'is' if need == 1 else 'are'} needed to measure the run"
    raise AutodidactError(f"tasks: {only} for {what} ({counts}); {needed}. {fixes}")


def _prompts(n: int, noun: str = "prompt") -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
