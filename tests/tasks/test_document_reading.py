"""Reading a document folder: formats to text, bad files skipped and counted by reason, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autodidact.errors import AutodidactError
from autodidact.tasks.documents import chunks
from autodidact.tasks.documents.reading import (
    DocumentsRead,
    html_to_text,
    load_documents,
    markdown_to_text,
    read_documents,
    scan_documents,
)

ICONV = "iconv -f latin1 -t utf-8 FILE > FILE.utf8.txt"
PDFTOTEXT = "pdftotext FILE.pdf FILE.txt"


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- formats -------------------------------------------------------------------------------------


def test_html_to_text_skips_head_script_style_and_breaks_at_blocks() -> None:
    html = (
        "<html><head><title>Title</title><style>p {color: red}</style></head><body>"
        "<h1>Apollo 13</h1><p>Launched <b>April 11</b>,\n   1970.</p><script>var x = 1;</script>"
        "<ul><li>Lovell</li><li>Swigert</li></ul><div>Haise</div>one<br>two<br/>three &amp; four</body></html>"
    )
    assert html_to_text(html) == (
        "Apollo 13\n\nLaunched April 11, 1970.\n\nLovell\nSwigert\n\nHaise\none\ntwo\nthree & four"
    )


def test_html_tables_become_one_line_per_row_with_cells_joined() -> None:
    html = (
        "<table><tr><th>Tank</th><th>Oxygen, lb</th></tr>\n<tr><td>Tank 1</td> <td>326.8</td></tr>"
        "<tr><td>Tank 2</td><td>327.2<br>(full)</td></tr><tr><td></td><td>654.0</td></tr></table>"
    )
    assert html_to_text(html) == "Tank | Oxygen, lb\nTank 1 | 326.8\nTank 2 | 327.2 (full)\n| 654.0"


def test_cells_and_rows_left_unclosed_still_end() -> None:
    html = "<table><tr><td>a<td>b<tr><td>c<td>d</table><p>after</p>"
    assert html_to_text(html) == "a | b\nc | d\n\nafter"


def test_head_left_open_ends_at_body() -> None:
    assert html_to_text("<html><head><title>x</title><body><p>text</p></body></html>") == "text"


def test_markdown_drops_image_links_and_converts_inline_html_tables() -> None:
    markdown = (
        "# 7.1 Power\n\n![](images/cdd1fe.jpg)\n\nUsage was ![fig 3](f3.png) low.\n\n"
        "<html><body><table><tr><td>Tank 1</td><td>29.0</td></tr><tr><td>Tank 2</td><td>29.2</td></tr>"
        "</table></body></html>\n\nThe [report](https://nasa.gov) ends.\n"
    )
    assert markdown_to_text(markdown) == (
        "# 7.1 Power\n\n\n\nUsage was  low.\n\nTank 1 | 29.0\nTank 2 | 29.2\n\nThe [report](https://nasa.gov) ends.\n"
    )


def test_md_markdown_txt_html_htm_are_read_recursively_sorted(tmp_path: Path) -> None:
    _write(tmp_path, "b/notes.markdown", "Notes ![x](y.png)here")
    _write(tmp_path, "a.txt", "\ufeffplain <b>kept</b>")  # the BOM dropped; .txt is not HTML
    _write(tmp_path, "c.htm", "<p>one</p><p>two</p>")
    _write(tmp_path, "d.HTML", "<td>x</td><td>y</td>")
    _write(tmp_path, "e.md", "text")
    assert load_documents(tmp_path) == [
        ("a.txt", "plain <b>kept</b>"),
        ("b/notes.markdown", "Notes here"),
        ("c.htm", "one\n\ntwo"),
        ("d.HTML", "x | y"),
        ("e.md", "text"),
    ]


# --- bad input: counted skips --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason", "words"),
    [
        ("blob.txt", b"abc\x00def", "binary", "binary (a NUL byte in its first 8 KiB): blob.txt"),
        ("latin.md", "caf\xe9".encode("latin-1"), "not_utf8", f"not UTF-8 text: latin.md; convert it, e.g. `{ICONV}`"),
        ("utf16.txt", "hello".encode("utf-16"), "not_utf8", "not UTF-8 text: utf16.txt"),
        ("blank.md", " \n\t\n", "empty", "empty or only whitespace (no text): blank.md"),
        ("scripts.html", "<script>var a;</script><style>p{}</style>", "empty", "(no text): scripts.html"),
        ("scan.pdf", b"%PDF-1.4 \x00\x01", "pdf", f"PDF, which is not read: scan.pdf; convert it with `{PDFTOTEXT}`"),
    ],
)
def test_a_bad_file_is_skipped_counted_and_named_with_its_fix(
    tmp_path: Path, caplog, name: str, content: bytes | str, reason: str, words: str
) -> None:
    _write(tmp_path, "good.md", "fine")
    _write(tmp_path, name, content)
    with caplog.at_level(logging.WARNING):
        found = read_documents(tmp_path)
    assert found == DocumentsRead([("good.md", "fine")], {reason: [name]})
    assert len(caplog.records) == 1 and words in caplog.records[0].getMessage()


def test_a_large_file_is_skipped_by_its_size_before_reading(tmp_path: Path, caplog, monkeypatch) -> None:
    _write(tmp_path, "small.md", "x" * 50)
    _write(tmp_path, "big.md", "y" * 200)  # over 0.0001 MiB = 104.9 bytes
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self.name) or real_open(self, *a, **k))
    with caplog.at_level(logging.WARNING):
        found = read_documents(tmp_path, max_file_mb=0.0001)
    assert found.documents == [("small.md", "x" * 50)] and found.counts() == {"too_large": 1}
    assert opened == ["small.md"]  # the large file was never opened
    assert "skipped 1 file(s) larger than max_file_mb=0.0001: big.md; split it" in caplog.text


def test_an_unreadable_file_is_skipped(tmp_path: Path, monkeypatch, caplog) -> None:
    _write(tmp_path, "good.md", "fine")
    _write(tmp_path, "locked.md", "secret")
    real_open = Path.open

    def refusing_open(self: Path, *args, **kwargs):
        if self.name == "locked.md":  # chmod does not stop root, who may run the tests
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    with caplog.at_level(logging.WARNING):
        found = read_documents(tmp_path)
    assert found == DocumentsRead([("good.md", "fine")], {"unreadable": ["locked.md"]})
    assert "unreadable (permissions or an I/O error): locked.md; check its permissions" in caplog.text


def test_mixed_folder_gives_the_documents_and_counts_each_skip(tmp_path: Path, caplog) -> None:
    _write(tmp_path, "guide.md", "# Guide\n\n![diagram](d.png)\nStep one.")
    _write(tmp_path, "page.html", "<html><head><title>t</title></head><body><p>Hello</p></body></html>")
    _write(tmp_path, "data.bin.txt", b"\x7fELF\x00\x00\x01")
    _write(tmp_path, "old.txt", "na\xefve".encode("latin-1"))
    _write(tmp_path, "paper.pdf", b"%PDF-1.5")
    _write(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n\x00")
    with caplog.at_level(logging.WARNING):
        found = read_documents(tmp_path)
    assert found.documents == [("guide.md", "# Guide\n\n\nStep one."), ("page.html", "Hello")]
    assert found.skipped == {
        "binary": ["data.bin.txt"], "not_utf8": ["old.txt"], "pdf": ["paper.pdf"], "other": ["photo.png"]
    }  # fmt: skip
    assert found.counts() == {"binary": 1, "not_utf8": 1, "pdf": 1, "other": 1}
    assert found.describe_skipped() == "4 skipped: 1 binary, 1 not UTF-8, 1 PDF, 1 other type"
    assert len(caplog.records) == 3  # one line per reason; an image beside the documents is not warned about
    assert "photo.png" not in caplog.text


# --- bad input: errors ---------------------------------------------------------------------------


def test_a_missing_path_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AutodidactError, match=r"^documents: '.*nowhere' does not exist; give a folder") as info:
        read_documents(tmp_path / "nowhere")
    assert "\n" not in str(info.value)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AutodidactError) as info:
        read_documents(tmp_path)
    assert str(info.value) == (
        f"documents: no readable document in '{tmp_path}' (it holds no file); add UTF-8 .md, .txt or .html files."
    )


def test_a_folder_of_skipped_files_is_one_error_with_counts_names_and_fixes(tmp_path: Path, caplog) -> None:
    _write(tmp_path, "a.pdf", b"%PDF")
    _write(tmp_path, "b.pdf", b"%PDF")
    _write(tmp_path, "c.txt", b"\xff\xfe\x00")
    _write(tmp_path, "d.jpg", b"\xff\xd8")
    with caplog.at_level(logging.WARNING), pytest.raises(AutodidactError) as info:
        read_documents(tmp_path)
    assert str(info.value) == (
        f"documents: no readable document in '{tmp_path}' (4 skipped: 2 PDF, 1 not UTF-8, 1 other type); add UTF-8 "
        f".md, .txt or .html files; PDF (a.pdf, b.pdf): convert it with `{PDFTOTEXT}` (from poppler-utils); "
        f"not UTF-8 (c.txt): convert it, e.g. `{ICONV}` (-f utf-16 for UTF-16 text)."
    )
    assert caplog.records == []  # the error alone: one line


def test_single_files(tmp_path: Path) -> None:
    assert load_documents(_write(tmp_path, "one.htm", "<p>a</p>")) == [("one.htm", "a")]
    with pytest.raises(AutodidactError, match=r"\(1 skipped: 1 PDF\).*pdftotext"):
        load_documents(_write(tmp_path, "one.pdf", b"%PDF"))
    with pytest.raises(AutodidactError, match=r"'.*one\.docx' is not a \.md, \.markdown, \.txt, \.html or \.htm file"):
        load_documents(_write(tmp_path, "one.docx", b"PK"))


def test_scan_reports_without_raising_and_chunks_reexports_the_readers(tmp_path: Path) -> None:
    assert scan_documents(tmp_path) == DocumentsRead([], {})
    assert chunks.load_documents is load_documents and chunks.scan_documents is scan_documents


def test_apollo_report_excerpt_table_and_figure() -> None:
    # Lines 37-40 and 46-50 of the Apollo 13 Mission Report as converted to Markdown (OCR errors kept), cut short.
    markdown = (
        "At landing, 29 ampere-hours of energy remained.\n\n"
        "![](images/e33095f56c995bfb09d25f010b4f7e79ad764a5cf212519400effa33e6ac5b9c.jpg)\n"
        "Figure 7.l-l.- Entry battery energy.\n\n# 7.1.3 Cryogenic Fluids\n\n"
        "<html><body><table><tr><td></td><td>Hy drogen, lb</td><td>Oxygen, 1b</td></tr><tr><td>Available at "
        "lift-off</td><td></td><td></td></tr><tr><td>Tank 1</td><td>29.0</td><td>326.8</td></tr><tr><td>Totals"
        "</td><td>58.2</td><td>654.0</td></tr></table></body></html>\n\n# 7.1.4 Oxy gen\n"
    )
    assert markdown_to_text(markdown) == (
        "At landing, 29 ampere-hours of energy remained.\n\n\nFigure 7.l-l.- Entry battery energy.\n\n"
        "# 7.1.3 Cryogenic Fluids\n\n| Hy drogen, lb | Oxygen, 1b\nAvailable at lift-off |  |\n"
        "Tank 1 | 29.0 | 326.8\nTotals | 58.2 | 654.0\n\n# 7.1.4 Oxy gen\n"
    )
