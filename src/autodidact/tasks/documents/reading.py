"""Reading a folder of documents into plain text, skipping (and counting) what cannot be read.

Markdown, plain text and HTML are read; HTML, and the HTML blocks inside
Markdown (converted reports hold whole tables as `<html><body><table>`), become
text through the standard library's `html.parser`. A file that cannot be used
(binary, too large, not UTF-8, empty, a PDF, unreadable) is skipped and counted
by reason, and the log names it with the fix; a file of any other type (images
beside the documents) is counted as 'other' without a warning. The chunker's
offsets refer to the cleaned text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

from autodidact.errors import AutodidactError

log = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUFFIXES = (*MARKDOWN_SUFFIXES, ".txt", *HTML_SUFFIXES)
SNIFF_BYTES = 8192  # a NUL byte in this much of a file's start marks it binary (as git and grep decide)
DEFAULT_MAX_FILE_MB = 20.0
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # also the start of UTF-32's



class SkipReason(NamedTuple):
    """Why a file is skipped: its short label in counts, what the log says about it, and the fix."""

    label: str
    what: str
    fix: str


# Reason -> its record; the keys are DocumentsRead.skipped's. 'other' is counted, never warned about.
SKIP_REASONS: dict[str, SkipReason] = {
    "binary": SkipReason(
        "binary", "binary (a NUL byte in its first 8 KiB)", "remove it or save it as .md, .txt or .html"
    ),
    "too_large": SkipReason("too large", "larger than max_file_mb", "split it, or raise the source's max_file_mb"),
    "not_utf8": SkipReason(
        "not UTF-8",
        "not UTF-8 text",
        "convert it, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8.txt` (-f utf-16 for UTF-16 text)",
    ),
    "empty": SkipReason("empty", "empty or only whitespace (no text)", "remove it or add text"),
    "pdf": SkipReason(
        "PDF", "PDF, which is not read", "convert it with `pdftotext FILE.pdf FILE.txt` (from poppler-utils)"
    ),
    "unreadable": SkipReason(
        "unreadable", "unreadable (permissions or an I/O error)", "check its permissions, e.g. `chmod a+r FILE`"
    ),
    "other": SkipReason("other type", "not a .md, .markdown, .txt, .html or .htm file", "none needed: it is ignored"),
}
_SHOWN_NAMES = 5  # a warning names at most this many files of one reason


@dataclass(frozen=True)
class DocumentsRead:
    """What reading a folder gave: the documents, and the files skipped by reason."""

    documents: list[tuple[str, str]]  # (path relative to the folder, cleaned text), sorted by path
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason (a SKIP_REASONS key) -> file names

    def counts(self) -> dict[str, int]:
        """How many files each reason skipped (reasons with none left out)."""
        return {reason: len(names) for reason, names in self.skipped.items() if names}

    def describe_skipped(self) -> str:
        """'3 skipped: 1 PDF, 2 not UTF-8', or 'none skipped'."""
        counts = self.counts()
        if not counts:
            return "none skipped"
        labels = ", ".join(f"{n} {SKIP_REASONS[reason].label}" for reason, n in counts.items())
        return f"{sum(counts.values())} skipped: {labels}"


_SKIPPED_TAGS = frozenset("script style head".split())
# A paragraph-like tag leaves a blank line before and after it (a paragraph break for the chunker); a
# line-like tag one line break.
_PARAGRAPH_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 table ul ol dl blockquote pre section article header footer hr".split()
)
_LINE_TAGS = frozenset("br div li tr dt dd caption figure figcaption main nav aside form address".split())
_CELL_TAGS = frozenset("td th".split())
# Marks in the extracted text, removed from the document's own text: where a cell starts in a row (becomes
# ' | '), a line break and a paragraph break. Consecutive breaks merge into the largest (</li><li> is one).
_CELL_MARK, _LINE_MARK, _PARAGRAPH_MARK = "\x1f", "\x1e", "\x1d"
_BREAKS = re.compile(r"[ \x1e\x1d]*[\x1e\x1d][ \x1e\x1d]*")  # a run of breaks (and the spaces around them)
_MARKS = re.compile(r"[\x1f\x1e\x1d]")


class _TextExtractor(HTMLParser):
    """HTML to text: block tags break lines, a table row is one line of cells joined by ' | '."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: dict[str, int] = {}  # open script/style/head elements
        self._cells = 0  # cells begun in the current row
        self._in_cell = False  # HTML lets </td> be left out: a new cell, row or table ends the cell

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping[tag] = self._skipping.get(tag, 0) + 1
        elif tag == "body":
            self._skipping.pop("head", None)  # an unclosed <head> (HTML lets </head> be left out) ends here
        elif tag in _CELL_TAGS:
            self.parts.append(_CELL_MARK if self._cells else "")
            self._cells += 1
            self._in_cell = True
        else:
            if tag in ("tr", "table"):
                self._cells, self._in_cell = 0, False
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping[tag] = max(0, self._skipping.get(tag, 0) - 1)
        elif tag in _CELL_TAGS:
            self._in_cell = False
        elif tag != "br":  # <br> breaks once; <br/> calls both handlers
            if tag in ("tr", "table"):
                self._in_cell = False
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if not any(self._skipping.values()):
            self.parts.append(re.sub(r"\s+", " ", _MARKS.sub(" ", data)))

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS or tag in _LINE_TAGS:
            # Inside a cell a block is a space: the row stays one line.
            self.parts.append(" " if self._in_cell else _PARAGRAPH_MARK if tag in _PARAGRAPH_TAGS else _LINE_MARK)

    def text(self) -> str:
        joined = _BREAKS.sub(lambda m: "\n\n" if _PARAGRAPH_MARK in m.group(0) else "\n", "".join(self.parts))
        lines = []
        for line in joined.split("\n"):
            cells = [" ".join(cell.split()) for cell in line.split(_CELL_MARK)]
            lines.append(" | ".join(cells).strip())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """The text of an HTML document or fragment: no script, style or head; block tags break lines;
    a table row is one line, its cells joined by ' | '."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


_IMAGE_LINK = re.compile(r"!\[[^\]\n]*\](?:\([^)\n]*\)|\[[^\]\n]*\])")
# A CommonMark HTML block: a line starting with a block-level tag, up to the next blank line.
_HTML_BLOCK = re.compile(
    r"^[ ]{0,3}</?(?:html|body|table|thead|tbody|tr|div|p|ul|ol|dl|h[1-6]|blockquote|pre|section|article)\b"
    r".*?(?=\n[ \t]*\n|\Z)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


def markdown_to_text(markdown: str) -> str:
    """Markdown without image links (`![alt](url)`), its HTML blocks turned into text by `html_to_text`."""
    text = _IMAGE_LINK.sub("", markdown)
    return _HTML_BLOCK.sub(lambda m: html_to_text(m.group(0)), text)


def _convert(suffix: str, text: str) -> str:
    if suffix in HTML_SUFFIXES:
        return html_to_text(text)
    if suffix in MARKDOWN_SUFFIXES:
        return markdown_to_text(text)
    return text


def _read_file(file: Path, max_bytes: float) -> tuple[str | None, str]:
    """(the cleaned text, '') of a document file, or (None, the reason it is skipped)."""
    suffix = file.suffix.lower()
    if suffix == ".pdf":
        return None, "pdf"
    if suffix not in SUFFIXES:
        return None, "other"
    try:
        if file.stat().st_size > max_bytes:  # before reading: a 50 MB file is never loaded
            return None, "too_large"
        with file.open("rb") as f:
            raw = f.read(int(max_bytes) + 1)  # bounded even if the file grows after the check
    except OSError:
        return None, "unreadable"
    if len(raw) > max_bytes:
        return None, "too_large"
    if raw.startswith(_UTF16_BOMS):
        return None, "not_utf8"  # UTF-16 text (Windows "Unicode") is full of NUL bytes: not binary
    if b"\0" in raw[:SNIFF_BYTES]:
        return None, "binary"
    try:
        text = raw.decode("utf-8-sig")  # -sig: a BOM is not part of the text
    except UnicodeDecodeError:
        return None, "not_utf8"
    text = _convert(suffix, text)
    return (text, "") if text.strip() else (None, "empty")


def scan_documents(path: str | Path, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> DocumentsRead:
    """The readable documents under `path` and the files skipped, by reason (no error when none is readable).

    Args:
        path: a folder (searched recursively) or a single document file.
        max_file_mb: a file larger than this many MiB is skipped unread.

    Raises:
        AutodidactError: the path does not exist, or is a single file of a type that is not read.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise AutodidactError(
            f"documents: '{root}' does not exist; give a folder of .md, .txt or .html files (or one such file)."
        )
    if root.is_file():
        if root.suffix.lower() not in (*SUFFIXES, ".pdf"):
            raise AutodidactError(
                f"documents: '{root}' is not a .md, .markdown, .txt, .html or .htm file; give such a file or a "
                "folder of them."
            )
        files = [(root.name, root)]
    else:
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    documents: list[tuple[str, str]] = []
    skipped: dict[str, list[str]] = {}
    for name, file in files:
        text, reason = _read_file(file, max_file_mb * (1 << 20))
        if text is None:
            skipped.setdefault(reason, []).append(name)
        else:
            documents.append((name, text))
    return DocumentsRead(documents, skipped)


def read_documents(path: str | Path, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> DocumentsRead:
    """`scan_documents`, with one warning line per reason a file was skipped (naming the files and the fix).

    Raises:
        AutodidactError: the path does not exist, or no document under it is readable (the message counts
            what was skipped and why).
    """
    found = scan_documents(path, max_file_mb)
    if not found.documents:  # one error line, no warnings before it: it names each reason, files and fix
        why = f"({found.describe_skipped()})" if found.skipped else "(it holds no file)"
        fixes = "".join(
            f"; {SKIP_REASONS[reason].label} ({_names(names)}): {SKIP_REASONS[reason].fix}"
            for reason, names in found.skipped.items()
            if reason != "other"
        )
        raise AutodidactError(
            f"documents: no readable document in '{path}' {why}; add UTF-8 .md, .txt or .html files{fixes}."
        )
    for reason, names in found.skipped.items():
        if reason == "other":
            continue  # a folder may hold images beside its documents
        _, what, fix = SKIP_REASONS[reason]
        if reason == "too_large":
            what = f"larger than max_file_mb={max_file_mb:g}"
        log.warning("documents: skipped %d file(s) %s: %s; %s.", len(names), what, _names(names), fix)
    return found


def _names(names: list[str]) -> str:
    """The first few names, and how many more."""
    more = len(names) - _SHOWN_NAMES
    return ", ".join(names[:_SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")


def load_documents(path: str | Path, *, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> list[tuple[str, str]]:
    """(file name, cleaned text) for every readable document under `path`, sorted by name (see `read_documents`).

    Raises:
        AutodidactError: the path does not exist, or no document under it is readable.
    """
    return read_documents(path, max_file_mb).documents
