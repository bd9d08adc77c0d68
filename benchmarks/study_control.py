"""The control arm of the recipe study: what self-evaluation adds over training on the model's own samples.

A judged recipe and the `random` recipe (the same budget and training, a
uniformly random valid sample per prompt: `judge.method: random`) run on the
same seeds, so they answer the same held-out prompts. Per (seed, task) the
difference is paired per prompt: d = pass_judged - pass_random at the same
iteration, with variance var(d) / n; the gain over random is the mean over
seeds and tasks, its 95% interval normal with the variance summed over the
cells, exactly as `study.paired_gain` does for gains over the base model.
Per task the same, over seeds only.

Verdicts come in as `study.verdicts` returns them: split -> iteration -> task
-> prompt id -> verdict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import fmean

Verdicts = dict[str, dict[int, dict[str, dict[str, float]]]]


def _cell(judged: dict[str, float], control: dict[str, float]) -> tuple[float, float, int] | None:
    """Mean paired difference over the prompts both answered, its variance, and the prompt count."""
    ids = sorted(judged.keys() & control.keys())
    if len(ids) < 2:
        return None
    d = [judged[i] - control[i] for i in ids]
    mean = fmean(d)
    return mean, sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d), len(d)


def _interval(cells: list[tuple[float, float, int]]) -> dict[str, float]:
    mean = fmean(c[0] for c in cells)
    half = 1.96 * math.sqrt(sum(c[1] for c in cells)) / len(cells)
    return {"gain": mean, "low": mean - half, "high": mean + half, "cells": len(cells)}


def over_control(judged: dict[int, Verdicts], control: dict[int, Verdicts], split: str) -> dict | None:
    """Judged minus random on one split, over the seeds both arms have, at each iteration both reached.

    Args:
        judged, control: seed -> that seed's verdicts, per arm.
        split: "heldout" or "heldout_paraphrase".

    Returns:
        None when no seed has both arms; else {"seeds", "by_iteration": {it: {"all": interval,
        "tasks": {task: interval}}}}, where an interval is {"gain", "low", "high", "cells"}.
    """
    seeds = sorted(s for s in judged.keys() & control.keys() if split in judged[s] and split in control[s])
    if not seeds:
        return None
    iterations = sorted(set.intersection(*(set(judged[s][split]) & set(control[s][split]) for s in seeds)))
    by_iteration = {}
    for it in iterations:
        cells, per_task = [], defaultdict(list)
        for seed in seeds:
            a, b = judged[seed][split][it], control[seed][split][it]
            for task in sorted(a.keys() & b.keys()):
                cell = _cell(a[task], b[task])
                if cell is not None:
                    cells.append(cell)
                    per_task[task].append(cell)
        if cells:
            by_iteration[it] = {"all": _interval(cells), "tasks": {t: _interval(c) for t, c in sorted(per_task.items())}}
    return {"seeds": seeds, "by_iteration": by_iteration}


def markdown(rows: dict[str, dict], split: str) -> str:
    """recipe -> `over_control` result, as a table in points: the gain over random per iteration and task."""
    pts = lambda x: f"{100 * x:+.1f}"  # noqa: E731
    ci = lambda r: f"{pts(r['gain'])} [{pts(r['low'])}, {pts(r['high'])}]"  # noqa: E731
    lines = [
        f"Judged minus random selection, {split}, points of pass rate [95% CI], paired per prompt:",
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
            tasks = ", ".join(f"{t} {ci(x)}" for t, x in r["tasks"].items())
            seeds = ",".join(str(s) for s in result["seeds"])
            lines.append(f"| {recipe} | {seeds} | {it} | {ci(r['all'])} | {tasks} |")
    return "\n".join(lines)
