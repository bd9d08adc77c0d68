"""Size and shape limits of the source tree (docs/ARCHITECTURE.md): small files, small classes, a loop without probing."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "autodidact"
BENCHMARKS = ROOT / "benchmarks"
MAX_FILE_LINES, MAX_CLASS_LINES = 400, 250


def _sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50, f"found only {len(files)} source files under {SRC}"
    return files


def test_no_source_file_is_over_400_lines():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert len(scripts) > 5, f"found only {len(scripts)} benchmark scripts under {BENCHMARKS}"
    long = {
        str(p.relative_to(ROOT)): n for p in [*_sources(), *scripts] if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"split these files (at most {MAX_FILE_LINES} lines each): {long}"


def test_no_class_is_over_250_lines():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long[f"{path.relative_to(SRC)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long, f"split these classes (at most {MAX_CLASS_LINES} lines each): {long}"


def test_the_loop_asks_protocols_not_attributes():
    # Optional abilities are protocols (tasks/base.py, engines/__init__.py), checked with isinstance.
    loop = sorted((SRC / "loop").rglob("*.py"))
    assert loop, "src/autodidact/loop/ holds no module"
    probes = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.func.id}("
        for path in loop
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
    ]
    assert not probes, f"declare the ability as a protocol and use isinstance instead: {probes}"
