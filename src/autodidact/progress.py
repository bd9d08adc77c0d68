"""Progress bars (rich) for the slow stages, silenced by `set_quiet(True)`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


@contextmanager
def progress_bar(desc: str, total: int, unit: str = "items") -> Iterator[Callable[[int], None]]:
    """Show a bar for `total` units; yields `advance(k)`."""
    if _quiet or total <= 0:
        yield lambda k: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(desc, total=total)
        yield lambda k: progress.advance(task, k)
