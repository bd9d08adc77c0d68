"""A run's prompts: built by every task and stored once; on resume, read back and what the tasks built
beside them (the documents task's search index) rebuilt without writing a prompt again."""

from __future__ import annotations

from autodidact.loop.context import RunContext
from autodidact.records import Prompt
from autodidact.tasks.base import Paraphrases, Restores


def prepare_prompts(ctx: RunContext) -> None:
    """Build and store every task's prompts (the first time), or restore the tasks from the stored ones."""
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
        prompts += train + heldout
        # The paraphrased held-out set: built-in tasks only. Stored in the same transaction as every other
        # prompt, so a resumed run neither lacks nor repeats it.
        if isinstance(task, Paraphrases) and t.paraphrase_size():
            prompts += task.build_paraphrased(t.train_size, t.heldout_size, t.paraphrase_size(), seed=config.seed)
    with store.transaction():
        store.add_prompts(prompts)
        store.set_meta("prompts_ready", "1")
