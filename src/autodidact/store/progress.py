"""The store's progress tables: metrics, stage marks, checkpoints and training faults."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autodidact.store.connection import Connection
from autodidact.store.schema import TABLES, real

CHECKPOINTS = "checkpoints"  # RUN_DIR/checkpoints/iter-N


class ProgressTables(Connection):
    """How far the run got and what it measured."""

    def add_metrics(self, iteration: int, values: Mapping[str, float | None], task: str = "") -> None:
        """Insert metrics of an iteration (task '' = all tasks); None -> NULL, NaN raises ValueError."""
        rows = [(iteration, name, task, real(v, f"metric {name!r}")) for name, v in values.items()]
        self._write("INSERT INTO metrics (iteration, name, task, value) VALUES (?, ?, ?, ?)", rows)

    def metrics(self, iteration: int | None = None) -> list[dict[str, Any]]:
        """Metric rows {iteration, name, task, value}, by iteration then insertion order."""
        rows = self._all(
            "SELECT iteration, name, task, value FROM metrics WHERE ?1 IS NULL OR iteration = ?1"
            " ORDER BY iteration, rowid",
            (iteration,),
        )
        return [{"iteration": r[0], "name": r[1], "task": r[2], "value": r[3]} for r in rows]

    def set_metrics(self, iteration: int, values: Mapping[str, float | None], task: str = "") -> None:
        """Insert or replace metrics that change after their iteration (human agreement, as ratings arrive)."""
        rows = [(iteration, name, task, real(v, f"metric {name!r}")) for name, v in values.items()]
        self._write("INSERT OR REPLACE INTO metrics (iteration, name, task, value) VALUES (?, ?, ?, ?)", rows)

    def metric(self, iteration: int, name: str, task: str = "") -> float | None:
        """One metric value; None if absent or stored as NULL."""
        row = self._one("SELECT value FROM metrics WHERE iteration = ? AND name = ? AND task = ?",
                        (iteration, name, task))
        return None if row is None else row[0]

    def finish_stage(self, iteration: int, stage: str, seconds: float, info: dict[str, Any] | None = None) -> None:
        """Mark a stage done; commit it in the same transaction as the stage's outputs."""
        self._write(
            "INSERT INTO stages (iteration, stage, seconds, finished_at, info) VALUES (?, ?, ?, ?, ?)",
            (iteration, stage, float(seconds), time.time(), None if info is None else json.dumps(info)),
        )

    def stage_done(self, iteration: int, stage: str) -> bool:
        """Whether the stage of this iteration was committed as finished."""
        return self._one("SELECT 1 FROM stages WHERE iteration = ? AND stage = ?", (iteration, stage)) is not None

    def stage_info(self, iteration: int, stage: str) -> dict[str, Any] | None:
        """The info dict given to finish_stage, or None if absent or not done."""
        row = self._one("SELECT info FROM stages WHERE iteration = ? AND stage = ?", (iteration, stage))
        return None if row is None or row[0] is None else json.loads(row[0])

    def stage_seconds(self, iteration: int) -> dict[str, float]:
        """Seconds per finished stage of an iteration, in finishing order."""
        rows = self._all("SELECT stage, seconds FROM stages WHERE iteration = ? ORDER BY rowid", (iteration,))
        return {stage: seconds for stage, seconds in rows}

    def add_checkpoint(self, iteration: int, path: str | Path) -> None:
        """Record the checkpoint trained at an iteration (a folder inside the run directory); an existing
        iteration raises. It is stored relative to the run directory, so a copied or moved run finds its own."""
        self._write("INSERT INTO checkpoints (iteration, path, is_best) VALUES (?, ?, 0)",
                    (iteration, self._relative(Path(path))))

    def checkpoint(self, iteration: int) -> str | None:
        """The checkpoint folder of an iteration (resolved against the run directory), or None."""
        row = self._one("SELECT path FROM checkpoints WHERE iteration = ?", (iteration,))
        return None if row is None else str(self.resolve(row[0]))

    def last_checkpoint(self) -> tuple[int, str] | None:
        """(iteration, folder) of the highest iteration with a checkpoint, or None."""
        row = self._one("SELECT iteration, path FROM checkpoints ORDER BY iteration DESC LIMIT 1")
        return None if row is None else (row[0], str(self.resolve(row[1])))

    def set_best(self, iteration: int) -> None:
        """Make this iteration's checkpoint the only best one; KeyError if it has none."""
        self._require_transaction()
        if self.checkpoint(iteration) is None:
            raise KeyError(f"no checkpoint for iteration {iteration}")
        self._write("UPDATE checkpoints SET is_best = (iteration = ?)", (iteration,))

    def best_checkpoint(self) -> tuple[int, str] | None:
        """(iteration, path) of the best checkpoint, or None."""
        row = self._one("SELECT iteration, path FROM checkpoints WHERE is_best = 1")
        return None if row is None else (row[0], str(self.resolve(row[1])))

    def resolve(self, stored: str) -> Path:
        """A path the store holds, in this run directory.

        Runs stored absolute checkpoint paths before they stored relative ones: such a path ending in
        `checkpoints/iter-N` means this run's own `checkpoints/iter-N`, never the folder it names (another
        copy of the run, or a run that was deleted).
        """
        path = Path(stored)
        if path.is_absolute():
            path = Path(*path.parts[-2:]) if path.parent.name == CHECKPOINTS else path
        return self.path.parent / path

    def _relative(self, path: Path) -> str:
        """`path` relative to the run directory. Given relative, it is relative to the run directory, unless it
        starts with the run directory's own path (RUN_DIR/checkpoints/..., as the loop builds it).

        Raises:
            ValueError: the folder is outside the run directory (the run would not be portable).
        """
        run = self.path.parent
        if not path.is_absolute() and not path.is_relative_to(run):
            return path.as_posix()
        try:
            return path.resolve().relative_to(run.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"checkpoint {path} is outside the run directory {run}") from None

    def add_fault(self, iteration: int, reason: str, learning_rate: float, action: str) -> int:
        """Record a training fault of an iteration (the next attempt number); returns the attempt number."""
        self._require_transaction()
        attempt = len(self.faults(iteration)) + 1
        self._write(
            "INSERT INTO faults (iteration, attempt, reason, learning_rate, action) VALUES (?, ?, ?, ?, ?)",
            (iteration, attempt, reason, float(learning_rate), action),
        )
        return attempt

    def faults(self, iteration: int | None = None) -> list[dict[str, Any]]:
        """Fault rows {iteration, attempt, reason, learning_rate, action}, in order."""
        rows = self._all(
            "SELECT iteration, attempt, reason, learning_rate, action FROM faults"
            " WHERE ?1 IS NULL OR iteration = ?1 ORDER BY iteration, attempt",
            (iteration,),
        )
        return [dict(zip(("iteration", "attempt", "reason", "learning_rate", "action"), r)) for r in rows]

    def undo_training(self, iteration: int, sample_ids: list[str]) -> None:
        """Forget an iteration's training: its train-stage mark, checkpoint row and the given (online) samples."""
        self._require_transaction()
        self._write("DELETE FROM stages WHERE iteration = ? AND stage = 'train'", (iteration,))
        self._write("DELETE FROM checkpoints WHERE iteration = ?", (iteration,))
        for sample_id in sample_ids:
            self._write("DELETE FROM judgments WHERE sample_id = ?", (sample_id,))
            self._write("DELETE FROM samples WHERE id = ?", (sample_id,))

    def counts(self) -> dict[str, int]:
        """Row count per table."""
        return {t: self._one(f"SELECT COUNT(*) FROM {t}")[0] for t in TABLES}
