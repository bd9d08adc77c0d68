"""What a run reports, read from its store: the same from the CLI, the API and a finished run resumed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from autodidact.records import Alert
from autodidact.store import RunStore

CONFIG_FILE, STORE_FILE = "config.yaml", "run.sqlite"


@dataclass
class RunResult:
    """What a finished (or stopped) run reports; the same from the CLI and the API."""

    run_dir: Path
    iterations: list[dict] = field(default_factory=list)  # one row per iteration, see `iteration_rows`
    best_iteration: int = 0
    best_checkpoint: str | None = None
    stop_reason: str | None = None
    alerts: list[Alert] = field(default_factory=list)  # every alert the monitors raised, by iteration
    paused: str | None = None  # why the run waits (human review pending); `resume` continues it


def comparable_info(info: dict) -> dict:
    """A stage's info without what differs between two identical runs: its timings and its peak memory."""
    return {k: v for k, v in info.items() if "seconds" not in k and k != "peak_rss_mib"}


def iteration_rows(store: RunStore) -> list[dict]:
    """One dict per evaluated iteration: metrics by task, samples (SFT) or pairs (DPO) kept, stage seconds,
    and which judge scored the held-out answers."""
    by_iter: dict[int, dict] = defaultdict(lambda: {"tasks": defaultdict(dict)})
    for row in store.metrics():
        target = by_iter[row["iteration"]]
        if row["task"]:
            target["tasks"][row["task"]][row["name"]] = row["value"]
        else:
            target[row["name"]] = row["value"]
    rows = []
    for it in sorted(by_iter):
        row = by_iter[it] | {"iteration": it, "tasks": dict(by_iter[it]["tasks"])}
        select_info = store.stage_info(it, "select") or {}
        judge_info = store.stage_info(it, "judge") or {}
        row["kept"] = select_info.get("pairs", select_info.get("kept"))
        row["judge_failed_train"] = judge_info.get("failed")
        row["heldout_judge"] = (store.stage_info(it, "evaluate") or {}).get("heldout_judge")
        row["seconds"] = store.stage_seconds(it)
        peaks = {stage: (store.stage_info(it, stage) or {}).get("peak_rss_mib") for stage in row["seconds"]}
        row["peak_rss_mib"] = {stage: mib for stage, mib in peaks.items() if mib is not None}
        rows.append(row)
    return rows


def collect_result(run_dir: Path, store: RunStore, paused: str | None = None) -> RunResult:
    """The result of the run in `store`: its iterations, best checkpoint, stop reason and alerts."""
    best = int(store.get_meta("best_iteration") or 0)
    checkpoint = store.best_checkpoint()
    return RunResult(
        run_dir=run_dir,
        iterations=iteration_rows(store),
        best_iteration=best,
        best_checkpoint=checkpoint[1] if checkpoint and best > 0 else None,
        stop_reason=store.get_meta("stop_reason"),
        alerts=store.alerts(),
        paused=paused,
    )
