"""The store's SQLite connection: opening (and migrating) the file, transactions, run-level meta values.

SQLite's own errors (another process holds the lock, a read-only folder, a full disk) become one-line
`AutodidactError`s that name the run directory and what to do.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autodidact.errors import AutodidactError
from autodidact.store.schema import SCHEMA, SCHEMA_NAMES, SCHEMA_VERSION, add_origin_column, lacks_origin

# How long a write waits for another connection's transaction (the review page rating while a run commits).
BUSY_SECONDS = 30.0

# sqlite3's primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _READONLY, _IOERR, _FULL, _CANTOPEN, _PERM = 5, 6, 8, 10, 13, 14, 3


def store_error(path: Path, exc: sqlite3.Error, read_only: bool = False) -> AutodidactError:
    """SQLite's error on the store at `path` as one line naming the run directory and the fix."""
    run, code = path.parent, (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in (_BUSY, _LOCKED):
        return AutodidactError(
            f"run '{run}': its store {path.name} is locked by another process (another autodidact command, "
            "a run, resume or review, is using it); wait for it to finish or stop it, then try again."
        )
    if code in (_FULL, _IOERR):
        return AutodidactError(
            f"disk full (or a disk I/O error) while writing {path}; free space or choose another output_dir."
        )
    if code in (_READONLY, _PERM) or (code == _CANTOPEN and not os.access(run, os.W_OK)):
        if read_only:
            return AutodidactError(
                f"cannot read the store {path} ({exc}); check its permissions, or copy the run directory somewhere "
                "writable and use the copy."
            )
        return AutodidactError(
            f"cannot write to run directory '{run}' (read-only); copy it somewhere writable and use the copy."
        )
    return AutodidactError(f"run '{run}': cannot use its store {path.name} ({exc}); check the folder and the disk.")


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_SECONDS)
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    if path.is_file() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        # A writable run: an ordinary connection that refuses writes, so closing it removes the -wal and -shm
        # files as a writer's does (a `mode=ro` reader would leave them behind).
        made = [p for p in (wal, shm) if not p.exists()]
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_SECONDS)
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens (creates) -wal and -shm
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            # A full disk has no room for run.sqlite-shm: read the file itself, as below, unless that misses commits.
            if (exc.sqlite_errorcode & 0xFF) not in (_FULL, _IOERR) or (wal.is_file() and wal.stat().st_size > 0):
                raise
            for partial in made:  # no other connection had the store open (it would hold the -wal file)
                partial.unlink(missing_ok=True)
    # Read-only: nobody can be writing to it, so unless a killed run left commits in its -wal file, the file
    # is read as immutable (a WAL reader would need to create run.sqlite-shm, which it cannot here).
    query = "mode=ro" if wal.is_file() and wal.stat().st_size > 0 else "mode=ro&immutable=1"
    return sqlite3.connect(f"{path.absolute().as_uri()}?{query}", uri=True, isolation_level=None, timeout=BUSY_SECONDS)


def _in_memory(conn: sqlite3.Connection) -> sqlite3.Connection:
    """A writable copy in memory of the database `conn` reads; `conn` is closed."""
    memory = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(memory)
    conn.close()
    memory.execute("PRAGMA foreign_keys=ON")
    return memory


class Connection:
    """One run's SQLite connection; `RunStore` adds the tables' reads and writes.

    `read_only`: open an existing store without ever writing to it (report, export, chat): no migration,
    no journal mode change, and a store in a read-only folder opens.
    """

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path, self.read_only = Path(path), read_only
        self._depth = 0
        self._refuse_writes = False  # set once open: an older store's upgrade in memory is written first
        try:
            self._conn = _connect(self.path, read_only)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc, read_only) from None
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self._conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, ...: not the file's fault
                raise store_error(self.path, exc, read_only) from None
            raise AutodidactError(
                f"{self.path}: not a readable run store ({exc}); start a new run directory."
            ) from None
        except BaseException:
            self._conn.close()
            raise
        self._refuse_writes = read_only

    def _prepare(self) -> None:
        """Journal mode and foreign keys; the tables created, or an older run's migrated (in memory if read-only)."""
        if not self.read_only:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if self._schema_is_current():  # the usual open of an existing run: no write lock, no DDL
            return
        if self.read_only:  # an older run's store: upgraded in a copy in memory, the file stays as it is
            self._conn = _in_memory(self._conn)
        with self.transaction():
            self._create_or_migrate()

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
        if self._refuse_writes:
            raise RuntimeError(f"{self.path} was opened read_only; open it without read_only to write")
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self._conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _require_transaction(self) -> None:
        if not self._depth:
            raise RuntimeError("RunStore writes must happen inside `with store.transaction():`")

    def _execute(self, sql: str, args: tuple = (), many: bool = False) -> sqlite3.Cursor:
        """Run one statement; SQLite's operational errors (locked, read-only, disk full) become one line."""
        try:
            return self._conn.executemany(sql, args) if many else self._conn.execute(sql, args)
        except sqlite3.OperationalError as exc:
            raise store_error(self.path, exc, self.read_only) from None

    def _write(self, sql: str, rows: list[tuple] | tuple) -> None:
        self._require_transaction()
        self._execute(sql, rows, many=isinstance(rows, list))

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        return self._execute(sql, args).fetchone()

    def set_meta(self, key: str, value: str) -> None:
        """Set (insert or replace) a run-level string value."""
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        """A run-level string value, or None if unset."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]
