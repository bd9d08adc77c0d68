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

The tables are read and written by three groups (`samples`, `progress`,
`review`); `schema` holds their definitions and the migration of older runs.
"""

from __future__ import annotations

from autodidact.store.progress import ProgressTables
from autodidact.store.review import ReviewTables
from autodidact.store.samples import RecordTables
from autodidact.store.schema import SCHEMA_VERSION


class RunStore(RecordTables, ProgressTables, ReviewTables):
    """The SQLite store of one run; open with ``RunStore(path)``, write in ``transaction()``."""

    def __enter__(self) -> RunStore:
        return self


__all__ = ["SCHEMA_VERSION", "RunStore"]
