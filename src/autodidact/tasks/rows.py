"""Reading rows from user files; the checks every row-based source shares are in `row_checks`.

`read_rows` turns a .jsonl, .csv or .parquet file, a `datasets` directory or a
hub dataset name into `(position, row)` pairs. A row that cannot be read (not
JSON, not UTF-8, the wrong number of CSV fields) comes back as a `BadRow`
instead of stopping the file, so one broken line costs one row. `RowErrors`
(in `autodidact.tasks.row_checks`) counts those rows and refuses the source once more
than `max_bad_rows` are bad.

Positions are what a person can find in the file: the line number for .jsonl
and .csv (the CSV header is line 1, so the first data row is line 2), the row
number from 1 for Parquet and `datasets`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from autodidact.errors import AutodidactError

SUPPORTED = (".jsonl", ".csv", ".parquet")
_BOM = b"\xef\xbb\xbf"
# A longer .jsonl/.csv line is a bad row, read in bounded pieces and never kept: no prompt needs a
# megabyte, and a 10 MB one would take gigabytes once tokenized and generated from.
MAX_LINE_BYTES = 1 << 20



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
            if "\\u" in text and has_lone_surrogate(row):
                row = SURROGATE_ROW
        except json.JSONDecodeError as exc:
            row = BadRow(f"not valid JSON ({exc.msg} at column {exc.colno})")
        except ValueError as exc:  # a number with more than 4300 digits
            row = BadRow(f"not readable JSON ({str(exc).split(';')[0]})")
        except RecursionError:
            row = BadRow("JSON nested too deeply to read; flatten the row")
        yield number, row
    if not found:
        raise AutodidactError(f"{path}: the file is empty (no JSON lines); add one JSON object per line.")


SURROGATE_ROW = BadRow("holds a lone surrogate escape such as \\ud800, which is not text; fix or remove it")


def has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds a lone surrogate (not text), anywhere inside it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
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
