"""Opening a run directory's store for review, without creating one by mistake."""

from __future__ import annotations

import os
from pathlib import Path

from autodidact.config import RunConfig, load_config
from autodidact.errors import AutodidactError
from autodidact.store import RunStore


def store_path(run_dir: Path) -> Path:
    """`run_dir/run.sqlite`; AutodidactError if `run_dir` is not a run directory."""
    path = Path(run_dir) / "run.sqlite"
    if not path.is_file():
        raise AutodidactError(f"{run_dir} is not a run directory (no run.sqlite); pass the folder of a run.")
    return path


def open_store(run_dir: Path) -> RunStore:
    """Open the store of an existing run directory (RunStore would create a new, empty one).

    Raises:
        AutodidactError: not a run directory, or a read-only one (ratings are written to its store).
    """
    path = store_path(run_dir)
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
        raise AutodidactError(
            f"cannot write to run directory {run_dir} (read-only), where review stores the ratings; "
            "copy it somewhere writable and review the copy."
        )
    return RunStore(path)


def saved_config(run_dir: Path) -> RunConfig | None:
    """The run's saved config.yaml, or None when the run has none."""
    path = Path(run_dir) / "config.yaml"
    return load_config(path) if path.is_file() else None


def min_ratings_of(run_dir: Path, default: int = 5) -> int:
    """`review.min_ratings` from the run's saved config.yaml, or `default` when the run has none."""
    config = saved_config(run_dir)
    return config.review.min_ratings if config is not None else default
