"""User data as a task: prompts (and optional reference answers) from a file or a dataset.

A `file` source maps columns to prompts: the prompt text (or chat messages),
an optional reference answer, an optional per-row verifier name, an optional
stable id. Rows that cannot be used are skipped and counted in `skipped`, up to
the source's `max_bad_rows`; configuration mistakes (a column no row has, an
unknown verifier) are errors at build time, never surprises mid-run.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from autodidact.config import FileSourceConfig
from autodidact.errors import AutodidactError
from autodidact.records import Message, Prompt, Split
from autodidact.tasks.row_checks import (
    RowErrors,
    chat_messages,
    close_match,
    location,
    position_name,
    read_good_rows,
    row_id,
    shown,
    split_heldout,
)
from autodidact.verifiers import BUILTINS, load_program

logger = logging.getLogger(__name__)

# The config's short verifier names -> program_builtins' names; the long names work too.
VERIFIER_ALIASES = {"exact": "exact_match", "number": "number_match"}
VERIFIER_NAMES = ("exact", "number", "regex", "json_keys", "python_tests")

Verifier = Callable[..., Any]
_NO_ROWS_FIX = "; fix these rows, or set prompt_field / messages_field to the column that holds the prompts."


def resolve_verifier(spec: str) -> tuple[str, Verifier]:
    """The canonical name and function of a verifier: a short name, a built-in name, or 'pkg.mod:fn'.

    Raises:
        ValueError: unknown name, or a dotted path that cannot be imported or called as
            `(prompt, response, reference)`.
    """
    name = VERIFIER_ALIASES.get(spec, spec)
    if name in BUILTINS:
        return name, BUILTINS[name]
    if ":" not in spec:
        raise ValueError(
            f"unknown verifier {spec!r}; choose one of {', '.join(VERIFIER_NAMES)}, "
            f"or a dotted path 'pkg.mod:fn'.{close_match(spec, VERIFIER_NAMES + tuple(BUILTINS))}"
        )
    program = load_program(spec)
    try:
        inspect.signature(program).bind("prompt", "response", None)
    except TypeError as exc:
        raise ValueError(f"verifier {spec!r} cannot be called as (prompt, response, reference): {exc}") from None
    except ValueError:  # no signature to inspect: the call will tell
        pass
    return spec, program


def as_score(value: Any) -> float | None:
    """A verifier's answer as a score: bool -> 1.0/0.0, a number as is, None (or NaN, or not a number) -> None."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(score) else score


class _Row(NamedTuple):
    position: int
    id: str
    messages: list[Message]
    reference: Any
    verifier: str | None  # canonical name; None when the row has no reference
    heldout: bool  # marked held-out by heldout_column


class FileTask:
    """Prompts from a .jsonl / .csv / .parquet file, a `datasets` directory or a hub dataset.

    Every usable row becomes a prompt with id `{name}-{row id}`; `skipped`
    lists `(position, reason)` for the rows left out by the last `build`.
    """

    def __init__(self, config: FileSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self.skipped: list[tuple[int, str]] = []
        self._verifiers: dict[str, tuple[str, Verifier]] = {}  # spec as written -> (canonical name, function)

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Read every row and split train / held-out.

        `train_size` and `heldout_size` size the built-in tasks and are ignored:
        a file is the user's chosen pool, used whole; the split follows
        `heldout_column` when set, else `heldout_ratio` drawn with `seed`.

        Raises:
            AutodidactError: unreadable source, a configured column that no row
                has, an unknown verifier, more than `max_bad_rows` bad rows, or no usable row.
        """
        cfg = self.config
        errors = RowErrors(cfg.path, cfg.max_bad_rows, self.name)
        self.skipped = errors.skipped
        records: list[tuple[int, dict[str, Any]]] = []
        for position, row in read_good_rows(cfg.path, cfg.split, errors):
            if isinstance(row, dict):
                records.append((position, row))
            else:
                errors.add(position, f"expected an object with fields, got {type(row).__name__}")
        if not records:
            raise AutodidactError(errors.summary("no usable rows") + _NO_ROWS_FIX)
        self._check_columns(records)
        self._verifier(cfg.verifier, "verifier")  # a typo in the default fails even when rows override it

        rows: list[_Row] = []
        first_seen: dict[str, int] = {}
        for position, record in records:
            try:
                row = self._row(position, record)
            except ValueError as exc:
                errors.add(position, str(exc))
                continue
            if row.id in first_seen:
                where = f"{position_name(cfg.path)} {first_seen[row.id]}"
                errors.add(position, f"duplicate id {row.id!r} (first at {where})")
                continue
            first_seen[row.id] = position
            rows.append(row)
        if not rows:
            raise AutodidactError(errors.summary("no usable rows") + _NO_ROWS_FIX)
        if errors.skipped:
            logger.warning(errors.summary(f"skipped {len(errors.skipped)} bad row(s)"))

        if cfg.heldout_column is not None:
            train_rows = [r for r in rows if not r.heldout]
            heldout_rows = [r for r in rows if r.heldout]
        else:
            train_rows, heldout_rows = split_heldout(rows, lambda r: json.dumps(r.messages), cfg.heldout_ratio, seed)
        return [self._prompt(r, "train") for r in train_rows], [self._prompt(r, "heldout") for r in heldout_rows]

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """The row's verifier on `response`: 1.0 / 0.0 (or its float); None without a reference or when it cannot grade.

        Built-ins run in this process (they are cheap and pure); `python_tests`
        runs the code in its own time-limited subprocess.
        """
        if prompt.reference is None:
            return None
        spec = prompt.meta.get("verifier", self.config.verifier)
        try:
            program = self._verifiers[spec][1] if spec in self._verifiers else resolve_verifier(spec)[1]
            return as_score(program(prompt.text, response, prompt.reference))
        except ValueError:
            return None  # the built-ins' "cannot grade this" (no pattern, reference not a number)
        except Exception as exc:  # a user verifier's bug or a bad regex must not end the run
            logger.warning("%s: verifier '%s' failed on %s (%s: %s)", self.name, spec, prompt.id,
                           type(exc).__name__, exc)
            return None

    def _check_columns(self, records: list[tuple[int, dict[str, Any]]]) -> None:
        """Refuse a configured column that no row has: a typo in the config, not a bad row."""
        cfg = self.config
        columns: set[str] = set()
        for _, record in records:
            columns.update(record)
        wanted = {"messages_field" if cfg.messages_field else "prompt_field": cfg.messages_field or cfg.prompt_field}
        for key in ("id_field", "verifier_field", "heldout_column"):
            if getattr(cfg, key) is not None:
                wanted[key] = getattr(cfg, key)
        if cfg.reference_field is not None and "reference_field" in cfg.model_fields_set:
            wanted["reference_field"] = cfg.reference_field  # the default 'reference' may be absent: prompts only
        for key, column in wanted.items():
            if column not in columns:
                raise AutodidactError(
                    f"source '{self.name}': {cfg.path} has no column {column!r} (set by {key}); "
                    f"its columns are: {', '.join(map(shown, sorted(columns)))}.{close_match(column, columns)}"
                )

    def _row(self, position: int, record: dict[str, Any]) -> _Row:
        """One record as a row. Raises ValueError (the row is skipped) or AutodidactError (an unknown verifier)."""
        cfg = self.config
        if cfg.messages_field:
            if record.get(cfg.messages_field) is None:
                raise ValueError(f"no '{cfg.messages_field}' value")
            messages = chat_messages(record[cfg.messages_field])
        else:
            text = record.get(cfg.prompt_field)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"'{cfg.prompt_field}' must be non-empty text; got {text!r}")
            messages = [{"role": "user", "content": text}]
        ident = row_id(record.get(cfg.id_field), cfg.id_field) if cfg.id_field else str(position)
        reference = record.get(cfg.reference_field) if cfg.reference_field else None
        if reference == "":
            reference = None  # an empty CSV cell: no reference, not "the answer is empty"
        verifier = cfg.verifier
        if cfg.verifier_field and record.get(cfg.verifier_field) not in (None, ""):
            verifier = record[cfg.verifier_field]
            if not isinstance(verifier, str):
                raise ValueError(f"'{cfg.verifier_field}' must be a verifier name; got {verifier!r}")
            verifier = self._verifier(verifier, f"{location(cfg.path, position)}, column '{cfg.verifier_field}'")
        else:
            verifier = self._verifier(verifier, "verifier")
        heldout = False
        if cfg.heldout_column is not None:
            heldout = _as_text(record.get(cfg.heldout_column)) == cfg.heldout_value
        return _Row(position, ident, messages, reference, verifier if reference is not None else None, heldout)

    def _verifier(self, spec: str, where: str) -> str:
        """Resolve and cache a verifier; its canonical name. Raises AutodidactError naming `where`."""
        if spec not in self._verifiers:
            try:
                name, program = resolve_verifier(spec)
            except ValueError as exc:
                raise AutodidactError(f"source '{self.name}': {where}: {exc}") from None
            self._verifiers[spec] = self._verifiers[name] = (name, program)
        return self._verifiers[spec][0]

    def _prompt(self, row: _Row, split: Split) -> Prompt:
        meta = {"verifier": row.verifier} if row.verifier else {}
        return Prompt(
            id=f"{self.name}-{row.id}", task=self.name, split=split, messages=row.messages,
            reference=row.reference, meta=meta,
        )


def _as_text(value: Any) -> str:
    """A cell as the text a user writes in heldout_value: JSON true is 'true', 1 is '1'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
