"""`autodidact report RUN_DIR`: one self-contained HTML page regenerated from a run's store.

The page holds the run's header, every monitor alert, eight plots (held-out
metric, judge score vs held-out metric, bias, diversity, returns, reliability,
stage timings, samples kept), the per-iteration metrics table, for a run with
documents sources both document accuracies and example answers before and after
(`documents.py`), and the best and worst judged samples of some training prompts. Plots are inline PNG `data:`
URIs and the styles are inline, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from autodidact.apps.report.html import render
from autodidact.errors import AutodidactError, file_error
from autodidact.loop import STORE_FILE, iteration_rows
from autodidact.store import RunStore

__all__ = ["write_report"]


def write_report(run_dir: Path, output: Path | None = None, examples: int = 5) -> Path:
    """Write the HTML report of a run directory and return its path.

    The run is only read (its store opened read-only), so a run in a read-only folder is reported with
    `output` elsewhere. The page is written under a temporary name and renamed: a failed write leaves nothing.

    Args:
        run_dir: The run directory (holds run.sqlite and config.yaml).
        output: Where to write the page; default `run_dir / "report.html"`.
        examples: Training prompts shown per iteration in the example tables.

    Raises:
        AutodidactError: when `run_dir` holds no run.sqlite, or the page cannot be written where asked.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).is_file():
        raise AutodidactError(f"'{run_dir}' is not a run directory (no {STORE_FILE}). Check the path.")
    fix = "use -o PATH to write it elsewhere" if output is None else "choose another -o PATH"
    output = run_dir / "report.html" if output is None else Path(output)
    _check_output(output, fix)
    with RunStore(run_dir / STORE_FILE, read_only=True) as store:
        page = render(run_dir, store, iteration_rows(store), examples)
    created = next((p for p in reversed([output.parent, *output.parent.parents]) if not p.exists()), None)
    tmp = output.with_name(output.name + ".tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:  # a full disk, a folder made read-only since the check
        tmp.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise file_error(exc, fix, output) from None
    return output


def _check_output(output: Path, fix: str) -> None:
    """Refuse, before the page is rendered, an output that is a folder or whose folder cannot be written."""
    if output.is_dir():
        raise AutodidactError(f"'{output}' is a folder; give a file path such as {output / 'report.html'}.")
    existing = next(p for p in output.parents if p.exists())  # missing folders are created
    if not existing.is_dir():
        raise AutodidactError(f"'{existing}' is a file, so {output} cannot be written; {fix}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AutodidactError(f"cannot write the report to {output} ({existing} is read-only); {fix}.")
