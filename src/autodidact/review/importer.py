"""Import human ratings from a CSV or JSONL file (columns `item_id`, `rating`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autodidact.errors import AutodidactError
from autodidact.records import Rating, ReviewItem
from autodidact.review.agreement import check_rating, update_agreement
from autodidact.store import RunStore

_PAIR_WORDS = {"first": 1.0, "second": 0.0, "tie": 0.5}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV (header on line 1) or JSONL file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"item_id", "rating"} - set(reader.fieldnames or [])
            if missing:
                raise AutodidactError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; "
                                      "the header needs item_id and rating.")
            for row in reader:
                yield reader.line_num, row
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise AutodidactError(f"{path}:{line_no}: not valid JSON ({exc.msg}).") from None
                if not isinstance(row, dict) or not {"item_id", "rating"} <= row.keys():
                    raise AutodidactError(f"{path}:{line_no}: expected an object with keys item_id and rating.")
                yield line_no, row
    else:
        raise AutodidactError(f"{path}: unknown ratings file type '{path.suffix}'; use .csv or .jsonl.")


def _value(item: ReviewItem, raw: Any) -> float:
    """A file's rating as a stored value: a 0-10 score, or for a pair first/second/tie or 1/0/0.5."""
    if isinstance(raw, str) and item.kind == "pair" and raw.strip().lower() in _PAIR_WORDS:
        return _PAIR_WORDS[raw.strip().lower()]
    if isinstance(raw, bool):  # JSON true/false would pass float() silently
        raise ValueError(f"expected a number, not {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        expected = "first, second, tie or 1/0/0.5" if item.kind == "pair" else "a number from 0 to 10"
        raise ValueError(f"rating {raw!r} is not {expected}") from None
    return check_rating(item, value)


def import_ratings(store: RunStore, path: Path, rater: str = "import", min_ratings: int = 5) -> int:
    """Store every rating in `path`, all or none in one transaction, and update each touched checkpoint's agreement.

    Args:
        store: the run's store.
        path: a .csv (header with item_id, rating) or .jsonl file ({"item_id": ..., "rating": ...} per line).
        rater: who rated, stored with each rating.
        min_ratings: ratings a checkpoint needs before its agreement counts.

    Returns:
        The number of ratings imported.

    Raises:
        AutodidactError: naming the file and line of an unknown item, a bad value, a repeated item or a
            missing column; nothing is stored then.
    """
    path = Path(path)
    if not path.is_file():
        raise AutodidactError(f"ratings file '{path}' not found.")
    items = {item.id: item for item in store.review_items()}
    ratings: dict[str, Rating] = {}
    lines: dict[str, int] = {}
    for line_no, row in _rows(path):
        item_id = str(row["item_id"]).strip()
        if item_id not in items:
            raise AutodidactError(f"{path}:{line_no}: unknown review item '{item_id}'; see `autodidact review`.")
        if item_id in ratings:
            raise AutodidactError(
                f"{path}:{line_no}: item '{item_id}' is rated again (first on line {lines[item_id]})."
            )
        try:
            value = _value(items[item_id], row["rating"])
        except ValueError as exc:
            raise AutodidactError(f"{path}:{line_no}: item '{item_id}': {exc}.") from None
        ratings[item_id] = Rating(item_id=item_id, value=value, rater=rater, source="import")
        lines[item_id] = line_no
    if not ratings:
        raise AutodidactError(f"{path}: no ratings found.")
    with store.transaction():
        for rating in ratings.values():
            store.rate(rating)
        for iteration in sorted({items[i].iteration for i in ratings}):
            update_agreement(store, iteration, min_ratings)
    return len(ratings)
