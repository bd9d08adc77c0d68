"""Tasks: where prompts come from and how answers are checked.

`TASKS` is a plain registry; a new task is added here by name, on purpose,
rather than discovered, so the set of valid `tasks` config values is visible
in one place.
"""

from __future__ import annotations

from autodidact.errors import unknown_name
from autodidact.tasks.arithmetic import ArithmeticTask
from autodidact.tasks.base import Task
from autodidact.tasks.instructions import InstructionsTask

TASKS: dict[str, type] = {
    ArithmeticTask.name: ArithmeticTask,
    InstructionsTask.name: InstructionsTask,
}


def get_task(name: str) -> Task:
    """A task instance with default settings, by its registered name."""
    if name not in TASKS:
        raise unknown_name("task", name, TASKS, field="tasks")
    return TASKS[name]()


__all__ = ["TASKS", "ArithmeticTask", "InstructionsTask", "Task", "get_task"]
