"""Answering prompts: the engine's batched sampling, or a task's own way of answering.

A task may answer its prompts itself (`respond`, e.g. the document task's
search tool); every other prompt goes to the engine in one batch, which is
what makes generation fast. Results come back in the order of `prompts`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from autodidact.engines import Completion, Engine, SamplingParams
from autodidact.records import Prompt
from autodidact.tasks import Task
from autodidact.tasks.base import Responds


def answer(
    engine: Engine, tasks: Mapping[str, Task], prompts: Sequence[Prompt], params: SamplingParams, desc: str
) -> list[list[Completion]]:
    """`params.n` completions per prompt, each prompt answered by its task's `respond` or by the engine."""
    by_way: dict[str | None, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_way[p.task if isinstance(tasks[p.task], Responds) else None].append(i)
    out: list[list[Completion] | None] = [None] * len(prompts)
    for task_name, indices in by_way.items():
        group = [prompts[i] for i in indices]
        if task_name is None:
            results = engine.generate([engine.render(p.messages) for p in group], params, desc=desc)
        else:
            results = tasks[task_name].respond(engine, group, params, desc=f"{desc}, {task_name}")
        for i, completions in zip(indices, results, strict=True):
            out[i] = completions
    return out  # type: ignore[return-value]  # every index was filled above


def verify_all(tasks: Mapping[str, Task], prompts: Mapping[str, Prompt], answers: Mapping[str, tuple[str, str]]) -> dict[str, float | None]:
    """Verdicts for answers {sample id: (prompt id, text)}, batched per task where the task can (`verify_batch`)."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for sample_id, (prompt_id, _) in answers.items():
        by_task[prompts[prompt_id].task].append(sample_id)
    verdicts: dict[str, float | None] = {}
    for name, ids in by_task.items():
        task = tasks[name]
        items = [(prompts[answers[i][0]], answers[i][1]) for i in ids]
        if hasattr(task, "verify_batch"):
            values = task.verify_batch([p for p, _ in items], [t for _, t in items])
        else:
            values = [task.verify(p, t) for p, t in items]
        verdicts.update(zip(ids, values, strict=True))
    return verdicts
