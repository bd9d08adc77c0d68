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

Paths are stored relative to the run directory (`checkpoints/iter-1`) and
resolved against the folder the store is opened in, so a copied or moved run
uses its own files. ``RunStore(path, read_only=True)`` never writes (report,
export, chat): it opens a store in a read-only folder too. SQLite's errors
(locked by another process, read-only, disk full) are raised as one-line
`AutodidactError`s naming the run directory.

The tables are read and written by three groups (`samples`, `progress`,
`review`); `schema` holds their definitions and the migration of older runs.
"""

from __future__ import annotations

from autodidact.store.progress import CHECKPOINTS, ProgressTables
from autodidact.store.review import ReviewTables
from autodidact.store.samples import RecordTables
from autodidact.store.schema import SCHEMA_VERSION


class RunStore(RecordTables, ProgressTables, ReviewTables):
    """The SQLite store of one run; open with ``RunStore(path)`` (or ``read_only=True``), write in ``transaction()``."""

    def __enter__(self) -> RunStore:
        return self


__all__ = ["CHECKPOINTS", "SCHEMA_VERSION", "RunStore"]
