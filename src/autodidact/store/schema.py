"""The tables of `run.sqlite`, and the one migration an older run directory needs.

Version 1 shipped without `samples.origin`; opening such a store adds the
column and fills it from what the older runs encoded in sample ids
(`-rev{k}` revisions, `-deployed` replies, `-g{k}` GRPO completions) and
prompt splits (held-out answers), so a run begun before the column existed
resumes. Like the tables added after version 1 shipped (pairs, alerts, ...,
created by `CREATE TABLE IF NOT EXISTS` on open), the column is an addition
an older reader can ignore, so the version stays 1; a store of another
version is refused.
"""

from __future__ import annotations

import math
import re
import sqlite3

SCHEMA_VERSION = 1

TABLES = (
    "meta", "prompts", "samples", "judgments", "selections", "pairs", "metrics", "stages", "checkpoints",
    "alerts", "review_items", "ratings", "faults",
)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS prompts (
        id TEXT PRIMARY KEY, task TEXT NOT NULL, split TEXT NOT NULL,
        messages TEXT NOT NULL, reference TEXT NOT NULL, meta TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS samples (
        id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL REFERENCES prompts(id),
        iteration INTEGER NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL,
        num_tokens INTEGER NOT NULL, origin TEXT NOT NULL DEFAULT 'generated', UNIQUE (iteration, prompt_id, idx))""",
    """CREATE TABLE IF NOT EXISTS judgments (
        sample_id TEXT NOT NULL REFERENCES samples(id), judge TEXT NOT NULL,
        score REAL, rationale TEXT NOT NULL, raw TEXT NOT NULL, error TEXT,
        PRIMARY KEY (sample_id, judge))""",
    """CREATE TABLE IF NOT EXISTS selections (
        iteration INTEGER NOT NULL, sample_id TEXT NOT NULL REFERENCES samples(id),
        prompt_id TEXT NOT NULL, messages TEXT NOT NULL, completion TEXT NOT NULL,
        score REAL, PRIMARY KEY (iteration, sample_id))""",
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

SCHEMA_NAMES = frozenset(re.search(r"IF NOT EXISTS (\w+)", statement).group(1) for statement in SCHEMA)

# How version 1 told a sample's origin, read once by the migration (the origin column replaces them).
_V1_ORIGINS = (("revision", re.compile(r"-rev\d+$")), ("deployed", re.compile(r"-deployed$")),
               ("online", re.compile(r"-g\d+$")))


def real(value: float | None, what: str) -> float | None:
    """Check a float for a REAL column: None stays None (NULL), NaN is rejected."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{what} is NaN; store None for 'no value'")
    return value


def lacks_origin(conn: sqlite3.Connection) -> bool:
    """Whether the store's `samples` table predates the origin column."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(samples)")]
    return bool(columns) and "origin" not in columns


def add_origin_column(conn: sqlite3.Connection) -> None:
    """The `samples.origin` column, filled for the samples already stored (inside a transaction)."""
    conn.execute("ALTER TABLE samples ADD COLUMN origin TEXT NOT NULL DEFAULT 'generated'")
    rows = conn.execute("SELECT s.id, p.split FROM samples s JOIN prompts p ON p.id = s.prompt_id").fetchall()
    updates = []
    for sample_id, split in rows:
        origin = "heldout" if split != "train" else next((o for o, rx in _V1_ORIGINS if rx.search(sample_id)), None)
        if origin is not None:
            updates.append((origin, sample_id))
    conn.executemany("UPDATE samples SET origin = ? WHERE id = ?", updates)
