"""RunStore: the single SQLite file (`run.sqlite`) that is the source of truth of a run.

Transaction / stage contract
----------------------------
Every write happens inside ``with store.transaction():`` (BEGIN IMMEDIATE ...
COMMIT, ROLLBACK on exception); a write method called outside one raises
RuntimeError. A stage's outputs and its ``finish_stage`` mark are committed in
one transaction, so after a kill a stage is either wholly there or wholly
absent; resume redoes only absent stages. Nested ``transaction()`` calls join
the outer one (only the outermost commits or rolls back).

The file uses WAL journaling with ``synchronous=FULL`` so a committed
transaction survives a kill or power loss, and foreign keys are enforced.
Primary keys make duplicates impossible: inserting a row whose key exists
raises ``sqlite3.IntegrityError`` instead of duplicating it. Float columns
store None as NULL and read it back as None; NaN is rejected with ValueError.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autodidact.errors import AutodidactError
from autodidact.records import Alert, Judgment, PreferencePair, Prompt, Rating, ReviewItem, Sample, SFTExample

SCHEMA_VERSION = 1

_TABLES = (
    "meta", "prompts", "samples", "judgments", "selections", "pairs", "metrics", "stages", "checkpoints",
    "alerts", "review_items", "ratings", "faults",
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS prompts (
        id TEXT PRIMARY KEY, task TEXT NOT NULL, split TEXT NOT NULL,
        messages TEXT NOT NULL, reference TEXT NOT NULL, meta TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS samples (
        id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL REFERENCES prompts(id),
        iteration INTEGER NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL,
        num_tokens INTEGER NOT NULL, UNIQUE (iteration, prompt_id, idx))""",
    """CREATE TABLE IF NOT EXISTS judgments (
        sample_id TEXT NOT NULL REFERENCES samples(id), judge TEXT NOT NULL,
        score REAL, rationale TEXT NOT NULL, raw TEXT NOT NULL, error TEXT,
        PRIMARY KEY (sample_id, judge))""",
    """CREATE TABLE IF NOT EXISTS selections (
        iteration INTEGER NOT NULL, sample_id TEXT NOT NULL REFERENCES samples(id),
        prompt_id TEXT NOT NULL, messages TEXT NOT NULL, completion TEXT NOT NULL,
        score REAL, PRIMARY KEY (iteration, sample_id))""",
    # Added after schema version 1 shipped: CREATE IF NOT EXISTS gives older run
    # directories the (empty) table on open, so the version stays 1.
    """CREATE TABLE IF NOT EXISTS pairs (
        iteration INTEGER NOT NULL, prompt_id TEXT NOT NULL REFERENCES prompts(id), messages TEXT NOT NULL,
        chosen_sample_id TEXT NOT NULL REFERENCES samples(id), rejected_sample_id TEXT NOT NULL REFERENCES samples(id),
        chosen TEXT NOT NULL, rejected TEXT NOT NULL, chosen_score REAL NOT NULL, rejected_score REAL NOT NULL,
        PRIMARY KEY (iteration, chosen_sample_id, rejected_sample_id))""",
    """CREATE TABLE IF NOT EXISTS metrics (
        iteration INTEGER NOT NULL, name TEXT NOT NULL, task TEXT NOT NULL DEFAULT '',
        value REAL, PRIMARY KEY (iteration, name, task))""",
    """CREATE TABLE IF NOT EXISTS stages (
        iteration INTEGER NOT NULL, stage TEXT NOT NULL, seconds REAL NOT NULL,
        finished_at REAL NOT NULL, info TEXT, PRIMARY KEY (iteration, stage))""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        iteration INTEGER PRIMARY KEY, path TEXT NOT NULL, is_best INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS samples_iteration ON samples (iteration)",
    # Monitors and human validation checkpoints (added, like `pairs`, with CREATE IF NOT EXISTS).
    """CREATE TABLE IF NOT EXISTS alerts (
        iteration INTEGER NOT NULL, monitor TEXT NOT NULL, message TEXT NOT NULL, stop INTEGER NOT NULL,
        PRIMARY KEY (iteration, monitor))""",
    """CREATE TABLE IF NOT EXISTS review_items (
        id TEXT PRIMARY KEY, iteration INTEGER NOT NULL, kind TEXT NOT NULL,
        prompt_id TEXT NOT NULL REFERENCES prompts(id), sample_id TEXT NOT NULL REFERENCES samples(id),
        judge_score REAL NOT NULL, other_sample_id TEXT REFERENCES samples(id), other_judge_score REAL)""",
    """CREATE TABLE IF NOT EXISTS ratings (
        item_id TEXT PRIMARY KEY REFERENCES review_items(id), value REAL NOT NULL, rater TEXT NOT NULL,
        source TEXT NOT NULL, rated_at REAL NOT NULL)""",
    # Training faults: why an iteration was rolled back, at which learning rate, and what followed.
    """CREATE TABLE IF NOT EXISTS faults (
        iteration INTEGER NOT NULL, attempt INTEGER NOT NULL, reason TEXT NOT NULL, learning_rate REAL NOT NULL,
        action TEXT NOT NULL, PRIMARY KEY (iteration, attempt))""",
)


_SCHEMA_NAMES = frozenset(re.search(r"IF NOT EXISTS (\w+)", statement).group(1) for statement in _SCHEMA)


def _real(value: float | None, what: str) -> float | None:
    """Check a float for a REAL column: None stays None (NULL), NaN is rejected."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{what} is NaN; store None for 'no value'")
    return value


class RunStore:
    """The SQLite store of one run; open with ``RunStore(path)``, write in ``transaction()``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self._depth = 0
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if self._schema_is_current():  # the usual open of an existing run: no write lock, no DDL
                return
            with self.transaction():
                for statement in _SCHEMA:
                    self._conn.execute(statement)
                version = self.get_meta("schema_version")
                if version is None:
                    self.set_meta("schema_version", str(SCHEMA_VERSION))
                elif version != str(SCHEMA_VERSION):
                    raise AutodidactError(
                        f"{self.path}: store schema version {version}, this autodidact expects "
                        f"{SCHEMA_VERSION}; start a new run directory."
                    )
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self._conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, ...: not the file's fault
                raise
            raise AutodidactError(
                f"{self.path}: not a readable run store ({exc}); start a new run directory."
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def _schema_is_current(self) -> bool:
        """Whether every table and index of the schema exists and the stored version is SCHEMA_VERSION."""
        names = {r[0] for r in self._all("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        return _SCHEMA_NAMES <= names and self.get_meta("schema_version") == str(SCHEMA_VERSION)

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on exception; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _require_transaction(self) -> None:
        if not self._depth:
            raise RuntimeError("RunStore writes must happen inside `with store.transaction():`")

    def _write(self, sql: str, rows: list[tuple] | tuple) -> None:
        self._require_transaction()
        if isinstance(rows, list):
            self._conn.executemany(sql, rows)
        else:
            self._conn.execute(sql, rows)

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        return self._conn.execute(sql, args).fetchone()

    def set_meta(self, key: str, value: str) -> None:
        """Set (insert or replace) a run-level string value."""
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        """A run-level string value, or None if unset."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    def add_prompts(self, prompts: list[Prompt]) -> None:
        """Insert prompts; an existing id raises."""
        self._write(
            "INSERT INTO prompts (id, task, split, messages, reference, meta) VALUES (?, ?, ?, ?, ?, ?)",
            [(p.id, p.task, p.split, json.dumps(p.messages), json.dumps(p.reference), json.dumps(p.meta))
             for p in prompts],
        )

    @staticmethod
    def _prompt(row: tuple) -> Prompt:
        return Prompt(id=row[0], task=row[1], split=row[2], messages=json.loads(row[3]),
                      reference=json.loads(row[4]), meta=json.loads(row[5]))

    def prompts(self, split: str | None = None, task: str | None = None) -> list[Prompt]:
        """Prompts in insertion order, optionally filtered by split and/or task."""
        rows = self._all(
            "SELECT id, task, split, messages, reference, meta FROM prompts"
            " WHERE (?1 IS NULL OR split = ?1) AND (?2 IS NULL OR task = ?2) ORDER BY rowid",
            (split, task),
        )
        return [self._prompt(r) for r in rows]

    def prompt(self, id: str) -> Prompt:
        """The prompt with this id; KeyError if absent."""
        row = self._one("SELECT id, task, split, messages, reference, meta FROM prompts WHERE id = ?", (id,))
        if row is None:
            raise KeyError(id)
        return self._prompt(row)

    def add_samples(self, samples: list[Sample]) -> None:
        """Insert samples; an existing id or (iteration, prompt_id, index) raises."""
        self._write(
            "INSERT INTO samples (id, prompt_id, iteration, idx, text, num_tokens) VALUES (?, ?, ?, ?, ?, ?)",
            [(s.id, s.prompt_id, s.iteration, s.index, s.text, s.num_tokens) for s in samples],
        )

    def samples(self, iteration: int) -> list[Sample]:
        """Samples of an iteration, by prompt insertion order then index."""
        rows = self._all(
            "SELECT s.id, s.prompt_id, s.iteration, s.idx, s.text, s.num_tokens FROM samples s"
            " JOIN prompts p ON p.id = s.prompt_id WHERE s.iteration = ? ORDER BY p.rowid, s.idx",
            (iteration,),
        )
        return [Sample(id=r[0], prompt_id=r[1], iteration=r[2], index=r[3], text=r[4], num_tokens=r[5])
                for r in rows]

    def add_judgments(self, judgments: list[Judgment]) -> None:
        """Insert judgments (score None = failed judgment, stored as NULL); duplicates raise."""
        self._write(
            "INSERT INTO judgments (sample_id, judge, score, rationale, raw, error) VALUES (?, ?, ?, ?, ?, ?)",
            [(j.sample_id, j.judge, _real(j.score, f"score of {j.sample_id}"), j.rationale, j.raw, j.error)
             for j in judgments],
        )

    def judgments(self, iteration: int, judge: str | None = None) -> list[Judgment]:
        """Judgments of an iteration's samples (optionally one judge), in sample order."""
        rows = self._all(
            "SELECT j.sample_id, j.judge, j.score, j.rationale, j.raw, j.error FROM judgments j"
            " JOIN samples s ON s.id = j.sample_id JOIN prompts p ON p.id = s.prompt_id"
            " WHERE s.iteration = ?1 AND (?2 IS NULL OR j.judge = ?2) ORDER BY p.rowid, s.idx, j.rowid",
            (iteration, judge),
        )
        return [Judgment(sample_id=r[0], judge=r[1], score=r[2], rationale=r[3], raw=r[4], error=r[5])
                for r in rows]

    def add_selection(self, iteration: int, examples: list[SFTExample]) -> None:
        """Insert the SFT examples selected at an iteration; duplicates raise."""
        self._write(
            "INSERT INTO selections (iteration, sample_id, prompt_id, messages, completion, score)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(iteration, e.sample_id, e.prompt_id, json.dumps(e.messages), e.completion,
              _real(e.score, f"score of {e.sample_id}")) for e in examples],
        )

    def selection(self, iteration: int) -> list[SFTExample]:
        """The SFT examples selected at an iteration, in insertion order."""
        rows = self._all(
            "SELECT sample_id, prompt_id, messages, completion, score FROM selections"
            " WHERE iteration = ? ORDER BY rowid",
            (iteration,),
        )
        return [SFTExample(sample_id=r[0], prompt_id=r[1], messages=json.loads(r[2]), completion=r[3], score=r[4])
                for r in rows]

    def add_pairs(self, iteration: int, pairs: list[PreferencePair]) -> None:
        """Insert the preference pairs selected at an iteration; duplicates raise."""
        self._write(
            "INSERT INTO pairs (iteration, prompt_id, messages, chosen_sample_id, rejected_sample_id,"
            " chosen, rejected, chosen_score, rejected_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(iteration, p.prompt_id, json.dumps(p.messages), p.chosen_sample_id, p.rejected_sample_id,
              p.chosen, p.rejected, _real(p.chosen_score, f"score of {p.chosen_sample_id}"),
              _real(p.rejected_score, f"score of {p.rejected_sample_id}")) for p in pairs],
        )

    def pairs(self, iteration: int) -> list[PreferencePair]:
        """The preference pairs selected at an iteration, in insertion order."""
        rows = self._all(
            "SELECT prompt_id, messages, chosen, rejected, chosen_sample_id, rejected_sample_id,"
            " chosen_score, rejected_score FROM pairs WHERE iteration = ? ORDER BY rowid",
            (iteration,),
        )
        return [PreferencePair(prompt_id=r[0], messages=json.loads(r[1]), chosen=r[2], rejected=r[3],
                               chosen_sample_id=r[4], rejected_sample_id=r[5], chosen_score=r[6],
                               rejected_score=r[7]) for r in rows]

    def add_metrics(self, iteration: int, values: Mapping[str, float | None], task: str = "") -> None:
        """Insert metrics of an iteration (task '' = all tasks); None -> NULL, NaN raises ValueError."""
        rows = [(iteration, name, task, _real(v, f"metric {name!r}")) for name, v in values.items()]
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
        rows = [(iteration, name, task, _real(v, f"metric {name!r}")) for name, v in values.items()]
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

    def add_checkpoint(self, iteration: int, path: str) -> None:
        """Record the checkpoint trained at an iteration; an existing iteration raises."""
        self._write("INSERT INTO checkpoints (iteration, path, is_best) VALUES (?, ?, 0)", (iteration, str(path)))

    def checkpoint(self, iteration: int) -> str | None:
        """The checkpoint path of an iteration, or None."""
        row = self._one("SELECT path FROM checkpoints WHERE iteration = ?", (iteration,))
        return None if row is None else row[0]

    def last_checkpoint(self) -> tuple[int, str] | None:
        """(iteration, path) of the highest iteration with a checkpoint, or None."""
        row = self._one("SELECT iteration, path FROM checkpoints ORDER BY iteration DESC LIMIT 1")
        return None if row is None else (row[0], row[1])

    def set_best(self, iteration: int) -> None:
        """Make this iteration's checkpoint the only best one; KeyError if it has none."""
        self._require_transaction()
        if self.checkpoint(iteration) is None:
            raise KeyError(f"no checkpoint for iteration {iteration}")
        self._write("UPDATE checkpoints SET is_best = (iteration = ?)", (iteration,))

    def best_checkpoint(self) -> tuple[int, str] | None:
        """(iteration, path) of the best checkpoint, or None."""
        row = self._one("SELECT iteration, path FROM checkpoints WHERE is_best = 1")
        return None if row is None else (row[0], row[1])

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Insert alerts (one per monitor and iteration; a duplicate raises)."""
        self._write(
            "INSERT INTO alerts (iteration, monitor, message, stop) VALUES (?, ?, ?, ?)",
            [(a.iteration, a.monitor, a.message, int(a.stop)) for a in alerts],
        )

    def alerts(self, iteration: int | None = None) -> list[Alert]:
        """Alerts, by iteration then insertion order."""
        rows = self._all(
            "SELECT iteration, monitor, message, stop FROM alerts WHERE ?1 IS NULL OR iteration = ?1"
            " ORDER BY iteration, rowid",
            (iteration,),
        )
        return [Alert(iteration=r[0], monitor=r[1], message=r[2], stop=bool(r[3])) for r in rows]

    def add_review_items(self, items: list[ReviewItem]) -> None:
        """Queue items for human review; an existing id raises."""
        self._write(
            "INSERT INTO review_items (id, iteration, kind, prompt_id, sample_id, judge_score, other_sample_id,"
            " other_judge_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(i.id, i.iteration, i.kind, i.prompt_id, i.sample_id, _real(i.judge_score, f"score of {i.id}"),
              i.other_sample_id, _real(i.other_judge_score, f"other score of {i.id}")) for i in items],
        )

    def review_items(self, iteration: int | None = None, pending: bool = False) -> list[ReviewItem]:
        """Review items (optionally of one iteration, or only those not rated yet), in queue order."""
        rows = self._all(
            "SELECT i.id, i.iteration, i.kind, i.prompt_id, i.sample_id, i.judge_score, i.other_sample_id,"
            " i.other_judge_score FROM review_items i LEFT JOIN ratings r ON r.item_id = i.id"
            " WHERE (?1 IS NULL OR i.iteration = ?1) AND (?2 = 0 OR r.item_id IS NULL) ORDER BY i.rowid",
            (iteration, int(pending)),
        )
        return [ReviewItem(id=r[0], iteration=r[1], kind=r[2], prompt_id=r[3], sample_id=r[4], judge_score=r[5],
                           other_sample_id=r[6], other_judge_score=r[7]) for r in rows]

    def review_item(self, id: str) -> ReviewItem:
        """The review item with this id; KeyError if absent."""
        for item in self.review_items():
            if item.id == id:
                return item
        raise KeyError(id)

    def rate(self, rating: Rating) -> None:
        """Store a person's rating; rating an item again replaces the earlier rating. KeyError for an unknown item."""
        self._require_transaction()
        if self._one("SELECT 1 FROM review_items WHERE id = ?", (rating.item_id,)) is None:
            raise KeyError(rating.item_id)
        self._write(
            "INSERT OR REPLACE INTO ratings (item_id, value, rater, source, rated_at) VALUES (?, ?, ?, ?, ?)",
            (rating.item_id, _real(rating.value, f"rating of {rating.item_id}"), rating.rater, rating.source,
             time.time()),
        )

    def ratings(self, iteration: int | None = None) -> list[Rating]:
        """Ratings (optionally of one checkpoint's items), in queue order of their items."""
        rows = self._all(
            "SELECT r.item_id, r.value, r.rater, r.source FROM ratings r JOIN review_items i ON i.id = r.item_id"
            " WHERE ?1 IS NULL OR i.iteration = ?1 ORDER BY i.rowid",
            (iteration,),
        )
        return [Rating(item_id=r[0], value=r[1], rater=r[2], source=r[3]) for r in rows]

    def sample(self, id: str) -> Sample:
        """The sample with this id; KeyError if absent."""
        r = self._one("SELECT id, prompt_id, iteration, idx, text, num_tokens FROM samples WHERE id = ?", (id,))
        if r is None:
            raise KeyError(id)
        return Sample(id=r[0], prompt_id=r[1], iteration=r[2], index=r[3], text=r[4], num_tokens=r[5])

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
        return {t: self._one(f"SELECT COUNT(*) FROM {t}")[0] for t in _TABLES}
