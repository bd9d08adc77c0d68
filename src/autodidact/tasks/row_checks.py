"""The checks row-based sources (files, logs) share: bad-row counting, chat messages, ids, the held-out split.

`RowErrors` counts the rows `read_rows` could not read, or a source rejected, and refuses the source
once more than `max_bad_rows` are bad; its message names the first few by their position in the file.
"""

from __future__ import annotations

import difflib
import json
import os
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from autodidact.errors import AutodidactError
from autodidact.records import Message
from autodidact.tasks.rows import SURROGATE_ROW, BadRow, has_lone_surrogate, read_rows

ROLES = ("system", "user", "assistant")
_SHOWN_ERRORS = 3  # bad rows quoted in the refusal message; the rest are counted

T = TypeVar("T")


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
        if has_lone_surrogate(value):
            raise ValueError(SURROGATE_ROW.reason)
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
