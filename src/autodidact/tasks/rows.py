"""Reading rows from user files, and the checks that row-based sources share.

`read_rows` turns a .jsonl, .csv or .parquet file, a `datasets` directory or a
hub dataset name into `(position, row)` pairs. A row that cannot be read (not
JSON, not UTF-8, the wrong number of CSV fields) comes back as a `BadRow`
instead of stopping the file, so one broken line costs one row. `RowErrors`
counts those rows and refuses the source once more than `max_bad_rows` are bad.

Positions are what a person can find in the file: the line number for .jsonl
and .csv (the CSV header is line 1, so the first data row is line 2), the row
number from 1 for Parquet and `datasets`.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from autodidact.errors import AutodidactError
from autodidact.records import Message

SUPPORTED = (".jsonl", ".csv", ".parquet")
ROLES = ("system", "user", "assistant")
_BOM = b"\xef\xbb\xbf"
_SHOWN_ERRORS = 3  # bad rows quoted in the refusal message; the rest are counted
# A longer .jsonl/.csv line is a bad row, read in bounded pieces and never kept: no prompt needs a
# megabyte, and a 10 MB one would take gigabytes once tokenized and generated from.
MAX_LINE_BYTES = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read, with the reason."""

    reason: str


def read_rows(path: str, split: str = "train") -> Iterator[tuple[int, Any]]:
    """The rows of a file, a `datasets` directory, or a hub dataset.

    The path is checked now; rows are read as the iterator is consumed.

    Args:
        path: A .jsonl / .csv / .parquet file, a directory written by
            `Dataset.save_to_disk` / `DatasetDict.save_to_disk`, or (when no
            such path exists) a Hugging Face hub dataset name.
        split: The split of a `DatasetDict` directory or hub dataset.

    Returns:
        `(position, row)` pairs; a row is a parsed JSON value (.jsonl), a dict
        of strings (.csv) or a dict (Parquet, `datasets`); an unreadable row is a `BadRow`.

    Raises:
        AutodidactError: missing path, unsupported extension, an empty file, a
            directory that is not a saved dataset, a split that does not exist.
    """
    if os.path.isdir(path):
        return _read_dataset_dir(path, split)
    if not os.path.exists(path):
        return _read_hub(path, split)
    extension = os.path.splitext(path)[1].lower()
    if extension not in SUPPORTED:
        raise AutodidactError(
            f"{path}: unsupported file type '{extension or '(none)'}'; use {', '.join(SUPPORTED)}, "
            "or a directory saved with datasets' save_to_disk."
        )
    if os.path.getsize(path) == 0:
        raise AutodidactError(f"{path}: the file is empty; add rows to it or fix the source's path.")
    reader = {".jsonl": _read_jsonl, ".csv": _read_csv, ".parquet": _read_parquet}[extension]
    return reader(path)


def _decode(raw: bytes) -> str | BadRow:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRow(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8")


def _too_long(size: int) -> BadRow:
    return BadRow(
        f"the line is {size / (1 << 20):.1f} MB, over the {MAX_LINE_BYTES >> 20} MB limit for one row; "
        "shorten it or split it into several rows"
    )


def _lines(path: str) -> Iterator[tuple[int, bytes | BadRow]]:
    # Binary lines, decoded one by one by the callers, so a non-UTF-8 byte costs its line, not the file.
    with open(path, "rb") as f:
        number = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := f.readline(MAX_LINE_BYTES)):
                    size += len(raw)  # the rest of the line, skipped without holding it
                yield number, _too_long(size)
                continue
            yield number, raw.removeprefix(_BOM) if number == 1 else raw


def _read_jsonl(path: str) -> Iterator[tuple[int, Any]]:
    found = False
    for number, raw in _lines(path):
        if isinstance(raw, BadRow):
            found = True
            yield number, raw
            continue
        if not raw.strip():
            continue  # blank lines (a trailing newline, a spacer) are not rows
        found = True
        text = _decode(raw)
        if isinstance(text, BadRow):
            yield number, text
            continue
        try:
            row = json.loads(text.rstrip("\r\n"))  # without the newline, errors point into the line
            # UTF-8 text holds no lone surrogates, but a JSON escape can write one ("\ud800"); the tokenizer
            # and the store would fail on it mid-run, so the row is refused here.
            if "\\u" in text and _has_lone_surrogate(row):
                row = _SURROGATE_ROW
        except json.JSONDecodeError as exc:
            row = BadRow(f"not valid JSON ({exc.msg} at column {exc.colno})")
        except ValueError as exc:  # a number with more than 4300 digits
            row = BadRow(f"not readable JSON ({str(exc).split(';')[0]})")
        except RecursionError:
            row = BadRow("JSON nested too deeply to read; flatten the row")
        yield number, row
    if not found:
        raise AutodidactError(f"{path}: the file is empty (no JSON lines); add one JSON object per line.")


_SURROGATE_ROW = BadRow("holds a lone surrogate escape such as \\ud800, which is not text; fix or remove it")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _read_csv(path: str) -> Iterator[tuple[int, Any]]:
    undecodable: set[int] = set()
    too_long: dict[int, BadRow] = {}

    def text_lines() -> Iterator[str]:
        for number, raw in _lines(path):
            if isinstance(raw, BadRow):
                too_long[number] = raw
                yield "\n"  # an empty line in its place; the row that spans it is reported below
                continue
            text = _decode(raw)
            if isinstance(text, BadRow):
                undecodable.add(number)
                text = raw.decode("utf-8", errors="replace")
            yield text

    reader = csv.reader(text_lines())
    header = next(reader, None)
    if 1 in too_long:
        raise AutodidactError(f"{path} line 1 (the header): {too_long[1].reason}.")
    if not header or not any(name.strip() for name in header):
        raise AutodidactError(
            f"{path}: the file is empty (no header line); add a header naming the columns, then one row per prompt."
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise AutodidactError(f"{path}: the header repeats column(s) {', '.join(duplicated)}; name each column once.")
    found = False
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise AutodidactError(f"{path} line {start}: cannot parse CSV ({exc}).") from None
        spanned = range(start, reader.line_num + 1)
        if any(number in too_long for number in spanned):
            found = True
            yield start, next(too_long[number] for number in spanned if number in too_long)
            continue
        if not fields:
            continue  # a blank line
        found = True
        if undecodable & set(spanned):
            yield start, BadRow("not UTF-8 text; save the file as UTF-8")
        elif len(fields) != len(header):
            yield start, BadRow(f"has {len(fields)} fields but the header has {len(header)}")
        else:
            yield start, dict(zip(header, fields, strict=True))
    if not found:
        raise AutodidactError(f"{path}: the file has a header but no rows; add one row per prompt under it.")


def _read_parquet(path: str) -> Iterator[tuple[int, Any]]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except pyarrow.ArrowException as exc:
        reason = str(exc).strip().splitlines()[0].rstrip(". ") if str(exc).strip() else type(exc).__name__
        raise AutodidactError(
            f"{path}: not a readable Parquet file ({reason}); check that it was written completely, "
            "or use a .jsonl or .csv file."
        ) from None
    if table.metadata.num_rows == 0:
        raise AutodidactError(f"{path}: the file has no rows.")
    number = 0
    for batch in table.iter_batches():
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _iter_dataset(dataset: Iterable[Any], where: str) -> Iterator[tuple[int, Any]]:
    number = 0
    for number, row in enumerate(dataset, start=1):
        yield number, row
    if number == 0:
        raise AutodidactError(f"{where}: the dataset has no rows.")


def _read_dataset_dir(path: str, split: str) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise AutodidactError(
            f"{path}: a directory, but not one written by datasets' save_to_disk; "
            f"give a {', '.join(SUPPORTED)} file or a saved dataset."
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise AutodidactError(f"{path}: no split '{split}'; set split to one of: {', '.join(loaded)}.")
        loaded = loaded[split]
    return _iter_dataset(loaded, path)


def _read_hub(name: str, split: str) -> Iterator[tuple[int, Any]]:
    # A name with a file extension or a path prefix was meant as a file: say so, not what the hub answered.
    if os.path.splitext(name)[1].lower() in SUPPORTED or name.startswith(("/", ".", "~")):
        raise AutodidactError(
            f"{name}: no such file or directory; fix the path (a relative path starts at the working directory)."
        )
    import datasets

    try:
        loaded = datasets.load_dataset(name, split=split)
    except Exception as exc:  # network, auth, unknown name, bad split: all one message for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AutodidactError(
            f"{name}: no such file or directory, and loading it as a hub dataset failed ({reason}); "
            "hub datasets need network access."
        ) from None
    return _iter_dataset(loaded, name)


class RowErrors:
    """Counts skipped rows; refuses the source once more than `max_bad_rows` are bad.

    `skipped` holds `(position, reason)` for every skipped row, in the order seen.
    """

    def __init__(self, path: str, max_bad_rows: int, source: str = "") -> None:
        self.path = path
        self.max_bad_rows = max_bad_rows
        self.source = source
        self.skipped: list[tuple[int, str]] = []

    def add(self, position: int, reason: str) -> None:
        """Record a skipped row.

        Raises:
            AutodidactError: this row makes more than `max_bad_rows`.
        """
        self.skipped.append((position, reason))
        if len(self.skipped) > self.max_bad_rows:
            raise AutodidactError(self.summary(f"more than max_bad_rows={self.max_bad_rows} rows are bad") +
                                  "; fix the rows or raise the source's max_bad_rows.")

    def summary(self, headline: str) -> str:
        """One line: the source, the file, `headline`, and the first few bad rows."""
        shown = "; ".join(f"{position_name(self.path)} {pos}: {reason}" for pos, reason in self.skipped[:_SHOWN_ERRORS])
        more = f"; and {len(self.skipped) - _SHOWN_ERRORS} more" if len(self.skipped) > _SHOWN_ERRORS else ""
        who = f"source '{self.source}': " if self.source else ""
        return f"{who}{self.path}: {headline} ({shown}{more})" if shown else f"{who}{self.path}: {headline}"


def position_name(path: str) -> str:
    """What a position counts in `path`: 'line' for .jsonl and .csv, 'row' otherwise."""
    return "line" if os.path.splitext(path)[1].lower() in (".jsonl", ".csv") else "row"


def location(path: str, position: int) -> str:
    """Where a row is, as a person would look for it: 'data.jsonl line 3', 'my_dataset row 3'."""
    return f"{path} {position_name(path)} {position}"


def chat_messages(value: Any) -> list[Message]:
    """Validate chat messages: a non-empty list of {role, content}, ending with a user message.

    A JSON string holding such a list (a CSV cell) is parsed first.

    Raises:
        ValueError: the reason the value is not usable as a prompt.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError("messages must be a list of {role, content}; got text that is not JSON") from None
        if _has_lone_surrogate(value):
            raise ValueError(_SURROGATE_ROW.reason)
    if not isinstance(value, list) or not value:
        raise ValueError(f"messages must be a non-empty list of {{role, content}}; got {_kind(value)}")
    messages: list[Message] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, dict) else None
            raise ValueError(f"message {i} needs a role of {', '.join(ROLES)}; got {role!r}")
        content = message_text(message.get("content"))
        if content is None:
            raise ValueError(f"message {i} content must be text; got {_kind(message.get('content'))}")
        messages.append({"role": message["role"], "content": content})
    if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise ValueError("the last message must be a non-empty user message")
    return messages


def message_text(content: Any) -> str | None:
    """Message text; OpenAI-style content parts [{"type": "text", "text": ...}] are joined. None if not text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        if all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            return "".join(p["text"] for p in content)
    return None


def read_good_rows(path: str, split: str, errors: RowErrors) -> list[tuple[int, Any]]:
    """Every readable row of `path` with its position; unreadable ones go to `errors`."""
    rows = []
    for position, row in read_rows(path, split):
        if isinstance(row, BadRow):
            errors.add(position, row.reason)
        else:
            rows.append((position, row))
    return rows


def row_id(value: Any, field: str) -> str:
    """A row id from the text or integer in column `field`.

    Raises:
        ValueError: missing, empty, or another type.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(f"'{field}' must be non-empty text or an integer; got {value!r}")
    return str(value).strip()


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def split_heldout(items: Sequence[T], key: Callable[[T], str], ratio: float, seed: int) -> tuple[list[T], list[T]]:
    """Split `items` into (train, held-out) at random for `seed`, keeping file order within each.

    Items with the same `key` (the same prompt text) land on the same side, so
    the held-out set never repeats a training prompt. About `ratio` of the items
    are held out: at least one when `ratio > 0` and there are two distinct keys,
    and never all of them.
    """
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(key(item), []).append(index)
    if ratio <= 0 or len(groups) < 2:
        return list(items), []
    order = list(groups)
    random.Random(seed).shuffle(order)
    wanted = max(1, round(ratio * len(items)))
    heldout: set[int] = set()
    for group in order[:-1]:  # the last group always stays in training
        if len(heldout) >= wanted:
            break
        heldout.update(groups[group])
    return [x for i, x in enumerate(items) if i not in heldout], [x for i, x in enumerate(items) if i in heldout]


def close_match(name: str, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest known name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def shown(name: str) -> str:
    """A name from the user's data as written, or its repr when it holds a line break or another unprintable
    character: an error message stays on one line."""
    return name if name.isprintable() else repr(name)
