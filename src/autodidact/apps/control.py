"""What self-evaluation adds over training on the model's own samples: a judged run against its control arm.

The control arm is the same run with `judge.method: random` (the same seed,
prompts, budget and training; a uniformly random valid sample per prompt).
Both arms answer the same held-out prompts, so the difference is paired per
prompt: per (seed, task), d = pass_judged - pass_random at the same
iteration, with variance var(d) / n. The gain over random is the mean over
the (seed, task) cells, and its 95% interval is normal around it with the
variance summed over the cells (prompt sampling, which dominates with 48
prompts a task); per task the same over seeds only. `benchmarks/study.py`
and `autodidact compare` report it.

Verdicts are the task verifiers' grades of the stored held-out answers,
re-graded after the run: split -> iteration -> task -> prompt id -> verdict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from statistics import fmean

from autodidact.loop import STORE_FILE
from autodidact.store import RunStore
from autodidact.tasks import get_task

Verdicts = dict[str, dict[int, dict[str, dict[str, float]]]]
SPLITS = ("heldout", "heldout_paraphrase")


def heldout_verdicts(run_dir: Path, tasks: dict | None = None) -> Verdicts:
    """Every stored held-out answer of the run graded by its task's verifier (ungradable answers left out).

    Args:
        run_dir: the run directory.
        tasks: task name -> task, for tasks that are not built-in (default: `get_task` by name).
    """
    out: Verdicts = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    with RunStore(Path(run_dir) / STORE_FILE) as store:
        iterations = sorted({row["iteration"] for row in store.metrics()})
        prompts = {p.id: (split, p) for split in SPLITS for p in store.prompts(split=split)}
        graders = {p.task: (tasks or {}).get(p.task) or get_task(p.task) for _, p in prompts.values()}
        for it in iterations:
            for sample in store.samples(it):  # each iteration's samples read once, every split sorted out of them
                split, prompt = prompts.get(sample.prompt_id, (None, None))
                if prompt is None:
                    continue
                verdict = graders[prompt.task].verify(prompt, sample.text)
                if verdict is not None:
                    out[split][it][prompt.task][prompt.id] = float(verdict)
    return out


def paired_cell(judged: dict[str, float], control: dict[str, float]) -> tuple[float, float] | None:
    """Mean of judged - control over the prompts both graded, and the variance of that mean; None under 2."""
    ids = sorted(judged.keys() & control.keys())
    if len(ids) < 2:
        return None
    d = [judged[i] - control[i] for i in ids]
    mean = fmean(d)
    return mean, sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)


def interval(cells: list[tuple[float, float]]) -> dict[str, float]:
    """The mean of the cells' means and its normal 95% interval (cell variances summed)."""
    mean = fmean(c[0] for c in cells)
    half = 1.96 * math.sqrt(sum(c[1] for c in cells)) / len(cells)
    return {"gain": mean, "low": mean - half, "high": mean + half, "cells": len(cells)}


def over_control(judged: dict[int, Verdicts], control: dict[int, Verdicts], split: str = "heldout") -> dict | None:
    """Judged minus random on one split, over the seeds both arms have, at each iteration both evaluated.

    Args:
        judged, control: seed -> that seed's verdicts, per arm.
        split: "heldout" or "heldout_paraphrase".

    Returns:
        None when no seed has both arms; else {"seeds": [...], "by_iteration": {it: {"all": interval,
        "tasks": {task: interval}}}}, an interval being {"gain", "low", "high", "cells"} (pass-rate units).
    """
    seeds = sorted(s for s in judged.keys() & control.keys() if judged[s].get(split) and control[s].get(split))
    if not seeds:
        return None
    iterations = sorted(set.intersection(*(set(judged[s][split]) & set(control[s][split]) for s in seeds)))
    by_iteration = {}
    for it in iterations:
        cells, per_task = [], defaultdict(list)
        for seed in seeds:
            a, b = judged[seed][split][it], control[seed][split][it]
            for task in sorted(a.keys() & b.keys()):
                cell = paired_cell(a[task], b[task])
                if cell is not None:
                    cells.append(cell)
                    per_task[task].append(cell)
        if cells:
            by_iteration[it] = {"all": interval(cells), "tasks": {t: interval(c) for t, c in sorted(per_task.items())}}
    return {"seeds": seeds, "by_iteration": by_iteration}


def points(r: dict[str, float]) -> str:
    """An interval in points of pass rate: '+3.1 [-0.4, +6.6]'."""
    return f"{100 * r['gain']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}]"


def markdown(rows: dict[str, dict | None], split: str) -> str:
    """recipe -> `over_control` result, as a table: the gain over random per iteration, all tasks and per task."""
    lines = [
        f"Judged minus random selection on `{split}`, points of pass rate [95% CI], paired per prompt:",
        "",
        "| recipe | seeds | iteration | all tasks | per task |",
        "|---|---|---:|---:|---|",
    ]
    for recipe, result in rows.items():
        if result is None:
            continue
        for it, r in result["by_iteration"].items():
            if it == 0:
                continue  # the same base model in both arms: zero by construction
            tasks = ", ".join(f"{t} {points(x)}" for t, x in r["tasks"].items())
            seeds = ",".join(str(s) for s in result["seeds"])
            lines.append(f"| {recipe} | {seeds} | {it} | {points(r['all'])} | {tasks} |")
    return "\n".join(lines)
