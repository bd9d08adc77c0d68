"""The package's layering (.importlinter) holds: no upward import, no import cycle (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_keep_the_layers_and_make_no_cycle():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert "No module named 'importlinter'" not in result.stderr, "install the test extra: pip install -e '.[test]'"
    report = result.stdout[result.stdout.find("Broken contracts"):] if "Broken contracts" in result.stdout else ""
    assert result.returncode == 0, (
        "an import breaks the layering in .importlinter (apps > loop > distributed > components > judges > "
        "tasks > engines ... > records > config > errors; see docs/ARCHITECTURE.md). Import downward only, "
        "or move the shared piece into a lower module:\n" + (report or result.stdout + result.stderr)
    )
    assert "2 kept, 0 broken" in result.stdout, result.stdout
