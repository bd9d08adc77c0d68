"""The store's SQLite connection: opening (and migrating) the file, transactions, run-level meta values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autodidact.errors import AutodidactError
from autodidact.store.schema import SCHEMA, SCHEMA_NAMES, SCHEMA_VERSION, add_origin_column, lacks_origin


class Connection:
    """One run's SQLite connection; `RunStore` adds the tables' reads and writes."""

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
                self._create_or_migrate()
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

    def _create_or_migrate(self) -> None:
        if lacks_origin(self._conn):  # a run begun before samples had an origin
            add_origin_column(self._conn)
        for statement in SCHEMA:
            self._conn.execute(statement)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif version != str(SCHEMA_VERSION):
            raise AutodidactError(
                f"{self.path}: store schema version {version}, this autodidact expects "
                f"{SCHEMA_VERSION}; start a new run directory."
            )

    def _schema_is_current(self) -> bool:
        """Whether every table, index and column of the schema exists and the stored version is SCHEMA_VERSION."""
        names = {r[0] for r in self._all("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        if not SCHEMA_NAMES <= names or lacks_origin(self._conn):
            return False
        return self.get_meta("schema_version") == str(SCHEMA_VERSION)

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __enter__(self):
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
