"""Cutting documents into overlapping chunks (reading them is `reading.py`).

A chunk is the unit everything else works on: the model writes questions
about one chunk, the held-out split is drawn over chunks, and the search
tool returns chunks.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from autodidact.errors import AutodidactError
from autodidact.tasks.documents.reading import load_documents, scan_documents

__all__ = [  # load_documents and scan_documents moved to reading.py; re-exported for the callers of this module
    "Chunk",
    "MIN_TRAIN_CHARS",
    "chunk_documents",
    "chunk_spans",
    "chunk_text",
    "load_documents",
    "scan_documents",
    "split_chunks",
    "spread",
]

MIN_TRAIN_CHARS = 100  # a training chunk trimmed below this writes no questions: too little to ask about

# Where a chunk may end, best first: a paragraph break, a sentence end, any space.
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"[.!?。][\"')\]]*\s")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Chunk:
    """A piece of one document: `index` is its position among that document's chunks."""

    id: str  # "<source>#<index>", unique in a corpus
    source: str  # the file's path relative to the folder
    text: str
    index: int = 0
    start: int = 0  # offsets of `text` in the document: text == document[start:end]
    end: int = 0


def _cut_point(text: str, start: int, limit: int) -> int:
    """Where a chunk starting at `start` should end: the best boundary in its second half, else `limit`."""
    lowest = start + (limit - start) // 2
    for pattern in (_PARAGRAPH, _SENTENCE, _SPACE):
        ends = [m.end() for m in pattern.finditer(text, lowest, limit)]
        if ends:
            return ends[-1]
    return limit


def chunk_spans(text: str, chunk_chars: int, overlap_chars: int) -> list[tuple[int, int]]:
    """(start, end) offsets in `text` of chunks of at most `chunk_chars` characters overlapping by `overlap_chars`.

    A chunk ends at the last paragraph break in its second half, else the last
    sentence end, else the last space, else mid-word at the limit. The next
    chunk starts `overlap_chars` before that end, moved back to the start of
    its word, so a fact cut at a boundary is whole in one of the two chunks.
    Spans exclude surrounding whitespace; none is empty.

    Raises:
        AutodidactError: the overlap is not below half the chunk length (chunks would barely advance).
    """
    if chunk_chars < 1 or not 0 <= overlap_chars < chunk_chars // 2:
        raise AutodidactError(
            f"documents: overlap_chars ({overlap_chars}) must be below half of chunk_chars ({chunk_chars}); lower it."
        )
    stop = len(text.rstrip())
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    while start < stop:
        if stop - start <= chunk_chars:
            spans.append((start, stop))
            break
        cut = _cut_point(text, start, start + chunk_chars)
        spans.append((start, len(text[:cut].rstrip())))  # `start` is not a space, so the span is not empty
        # The cut lies past the chunk's midpoint and the overlap is under half a
        # chunk, so `start` always advances.
        previous, start = start, cut - overlap_chars
        word = start
        while word > previous + 1 and not text[word - 1].isspace():
            word -= 1  # back to the start of the word, so the overlap is at least what was asked
        if overlap_chars and text[word - 1].isspace():
            start = word
        start = _skip_space(text, start)
    return spans


def chunk_text(text: str, chunk_chars: int, overlap_chars: int) -> list[str]:
    """The chunks of `text` (see `chunk_spans`): stripped, never empty."""
    return [text[a:b] for a, b in chunk_spans(text, chunk_chars, overlap_chars)]


def chunk_documents(documents: list[tuple[str, str]], chunk_chars: int, overlap_chars: int) -> list[Chunk]:
    """Every document's chunks, in document order."""
    return [
        Chunk(id=f"{name}#{i}", source=name, text=text[a:b], index=i, start=a, end=b)
        for name, text in documents
        for i, (a, b) in enumerate(chunk_spans(text, chunk_chars, overlap_chars))
    ]


def spread(items: list, limit: int | None) -> list:
    """At most `limit` items, evenly spread over `items` (first item included), in order."""
    if limit is None or len(items) <= limit:
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def split_chunks(
    chunks: list[Chunk], documents: dict[str, str], ratio: float, seed: int
) -> tuple[list[Chunk], list[Chunk], int]:
    """Draw held-out chunks (at least one when `ratio` > 0, never all); the rest, cut free of held-out text, train.

    Consecutive chunks share overlap text, so a training chunk loses the part it
    shares with any held-out chunk: no held-out text is in a training chunk.
    A training chunk left shorter than `MIN_TRAIN_CHARS` is dropped.

    Returns:
        (held-out chunks, trimmed training chunks, how many training chunks were dropped).
    """
    n_heldout = min(len(chunks) - 1, max(1, round(ratio * len(chunks)))) if ratio > 0 and len(chunks) > 1 else 0
    chosen = set(random.Random(seed).sample(range(len(chunks)), n_heldout))
    heldout = [c for i, c in enumerate(chunks) if i in chosen]
    train, dropped = [], 0
    for chunk in (c for i, c in enumerate(chunks) if i not in chosen):
        pieces = [(chunk.start, chunk.end)]
        for h in (h for h in heldout if h.source == chunk.source and h.start < chunk.end and chunk.start < h.end):
            pieces = [p for a, b in pieces for p in ((a, min(b, h.start)), (max(a, h.end), b)) if p[0] < p[1]]
        a, b = max(pieces, key=lambda p: p[1] - p[0], default=(0, 0))
        document = documents[chunk.source]
        a, b = _skip_space(document, a), max(a, len(document[:b].rstrip()))
        if b - a < MIN_TRAIN_CHARS:
            dropped += 1
            continue
        train.append(replace(chunk, text=document[a:b], start=a, end=b))
    return heldout, train, dropped


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i
