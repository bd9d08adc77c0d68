"""Tasks: where prompts come from and how answers are checked.

`TASKS` is a plain registry of the built-in tasks; a new one is added here by
name, on purpose, rather than discovered, so the set of valid `tasks.names`
is visible in one place. `tasks.sources` adds tasks built from the user's
data: files, logs of deployed conversations, self-written prompts and
documents (`build_tasks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autodidact.errors import unknown_name
from autodidact.tasks.arithmetic import ArithmeticTask
from autodidact.tasks.base import Task
from autodidact.tasks.documents import DocumentsTask
from autodidact.tasks.files import FileTask
from autodidact.tasks.instructions import InstructionsTask
from autodidact.tasks.logs import LogsTask
from autodidact.tasks.self_instruct import SelfInstructTask

if TYPE_CHECKING:
    from autodidact.config import TasksConfig
    from autodidact.embeddings import Embedder
    from autodidact.engines import Engine

TASKS: dict[str, type] = {
    ArithmeticTask.name: ArithmeticTask,
    InstructionsTask.name: InstructionsTask,
}


def get_task(name: str) -> Task:
    """A task instance with default settings, by its registered name."""
    if name not in TASKS:
        raise unknown_name("task", name, TASKS, field="tasks")
    return TASKS[name]()


def build_tasks(
    config: TasksConfig,
    engine: Engine | None = None,
    embedder: Embedder | None = None,
    judge_engine: Engine | None = None,
) -> dict[str, Task]:
    """Every task of a run, by name: the built-in ones, then the configured sources.

    Self-written prompts and documents need the model (`engine`) and the
    sentence embedder; documents grade answers on `judge_engine` (the policy's
    engine unless `judge.model` names another model); files and logs need none.
    """
    tasks: dict[str, Task] = {name: get_task(name) for name in config.names}
    for source in config.sources:
        if source.type == "file":
            tasks[source.name] = FileTask(source)
        elif source.type == "logs":
            tasks[source.name] = LogsTask(source)
        elif source.type == "self_instruct":
            tasks[source.name] = SelfInstructTask(source, embedder)
        elif source.type == "documents":
            tasks[source.name] = DocumentsTask(source, engine, embedder, judge_engine, search_first=source.search_first)
    return tasks


__all__ = ["TASKS", "ArithmeticTask", "InstructionsTask", "Task", "build_tasks", "get_task"]
