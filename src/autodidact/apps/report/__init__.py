"""`autodidact report RUN_DIR`: one self-contained HTML page regenerated from a run's store.

The page holds the run's header, every monitor alert, eight plots (held-out
metric, judge score vs held-out metric, bias, diversity, returns, reliability,
stage timings, samples kept), the per-iteration metrics table and the best and
worst judged samples of some training prompts. Plots are inline PNG `data:`
URIs and the styles are inline, so the file can be mailed or archived alone.
"""

from __future__ import annotations

from pathlib import Path

from autodidact.apps.report.html import render
from autodidact.errors import AutodidactError
from autodidact.loop import STORE_FILE, iteration_rows
from autodidact.store import RunStore

__all__ = ["write_report"]


def write_report(run_dir: Path, output: Path | None = None, examples: int = 5) -> Path:
    """Write the HTML report of a run directory and return its path.

    Args:
        run_dir: The run directory (holds run.sqlite and config.yaml).
        output: Where to write the page; default `run_dir / "report.html"`.
        examples: Training prompts shown per iteration in the example tables.

    Raises:
        AutodidactError: when `run_dir` holds no run.sqlite.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).is_file():
        raise AutodidactError(f"'{run_dir}' is not a run directory (no {STORE_FILE}). Check the path.")
    output = run_dir / "report.html" if output is None else Path(output)
    with RunStore(run_dir / STORE_FILE) as store:
        page = render(run_dir, store, iteration_rows(store), examples)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(output)
    return output
