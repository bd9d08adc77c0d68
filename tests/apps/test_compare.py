"""`autodidact compare` on a tiny model: the table between the markers, the JSON, resuming, DPO picks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_cli import autodidact

from autodidact.apps.compare import (
    MARK_END,
    MARK_START,
    best_self_judges,
    compare,
    method_overrides,
    replace_section,
)
from autodidact.errors import AutodidactError
from autodidact.evaluation import wilson_interval
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore

DEFAULT_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "default.yaml")
BEFORE = "# Results\n\nThe default run's table stays as it is.\n\n"
AFTER = "\n\n## Later section\n\nAlso untouched.\n"


def tiny_overrides(model_dir: str) -> list[str]:
    return [
        f"model.name={model_dir}", "model.dtype=float32", "model.device=cpu",
        "tasks.train_size=4", "tasks.prompts_per_iteration=2", "tasks.heldout_size=4", "tasks.min_heldout=1",
        "generation.samples_per_prompt=2", "generation.max_new_tokens=4", "evaluation.max_new_tokens=4",
        "judge.batch_size=8", "training.lora_r=2", "training.lora_alpha=4", "training.batch_size=4",
    ]  # fmt: skip


def table_rows(markdown: str) -> list[list[str]]:
    section = markdown.split(MARK_START, 1)[1].split(MARK_END, 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]  # without the header


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def test_compare_writes_one_row_per_method_between_the_markers_and_resumes(tiny_llama, tmp_path):
    results, out = tmp_path / "RESULTS.md", tmp_path / "cmp"
    results.write_text(BEFORE + f"{MARK_START}\n| stale | table |\n{MARK_END}" + AFTER)
    args = ["--methods", "direct,pairwise,random", "--dpo-best", "0", "--iterations", "1", "--budget", "0.5"]
    args += ["--config", DEFAULT_CONFIG, "--output-dir", str(out), "--results", str(results)]
    overrides = tiny_overrides(tiny_llama)
    proc = autodidact("--quiet", "compare", *args, *[a for o in overrides for a in ("--set", o)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    text = results.read_text()
    assert text.startswith(BEFORE + MARK_START) and text.endswith(MARK_END + AFTER) and "stale" not in text
    rows = table_rows(text)
    assert [row[0] for row in rows] == ["direct", "pairwise", "random"]
    payload = json.loads((out / "compare.json").read_text())
    assert [m["method"] for m in payload["methods"]] == ["direct", "pairwise", "random"]
    assert payload["methods"][2]["over_random"] is None and rows[2][-5] == "-"  # the control itself
    assert payload["settings"] | {"date": None} == {
        "command": proc.stdout.split("Command: `", 1)[1].split("`", 1)[0],
        "config": DEFAULT_CONFIG, "model": tiny_llama, "seed": 0, "budget": 0.5, "iterations": 1,
        "prompts_per_iteration": 1, "heldout_size": 2, "overrides": overrides, "date": None,
        "json": str(out / "compare.json"),
    }  # fmt: skip

    for row, method in zip(rows[:2], payload["methods"]):
        run_dir = out / method["method"]
        assert method["run_dir"] == str(run_dir) and method["training"] == "sft" and method["heldout_judge"] == "direct"
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["judge"]["method"] == method["method"]
        over = method["over_random"]
        assert over | {"gain": None, "low": None, "high": None} == {
            "iteration": 1, "cells": 2, "gain": None, "low": None, "high": None,
        }  # fmt: skip
        assert over["gain"] == pytest.approx(by_hand_over_random(run_dir, out / "random"))
        assert (saved["tasks"]["prompts_per_iteration"], saved["tasks"]["heldout_size"]) == (1, 2)  # budget 0.5
        assert (saved["stopping"]["max_iterations"], saved["stopping"]["patience"]) == (1, 1)
        cells = []
        with RunStore(run_dir / STORE_FILE) as store:
            for it in method["iterations"]:
                n = it["iteration"]
                # 2 tasks x 2 held-out prompts, every answer graded by the built-in verifiers.
                passed = sum(round(store.metric(n, "pass_rate", task) * 2) for task in ("arithmetic", "instructions"))
                low, high = wilson_interval(passed, 4)
                assert (it["passed"], it["graded"], it["pass_rate"]) == (passed, 4, passed / 4)
                assert (it["pass_low"], it["pass_high"]) == (low, high)
                assert it["mean_pass_rate"] == store.metric(n, "pass_rate")
                assert it["judge_auc"] == store.metric(n, "judge_auc")
                assert it["position_consistency"] == store.metric(n, "position_consistency")
                cells.append(f"{pct(passed / 4)} [{pct(low)}, {pct(high)}]")
            tokens = store.stage_info(1, "generate")["tokens"] + store.stage_info(1, "judge")["judge_tokens"]
            minutes = sum(sum(store.stage_seconds(n).values()) for n in (0, 1)) / 60
        assert method["tokens"] == tokens and method["minutes"] == pytest.approx(minutes)
        auc = " / ".join("-" if it["judge_auc"] is None else f"{it['judge_auc']:.2f}" for it in method["iterations"])
        consistency = method["iterations"][1]["position_consistency"]
        gain = f"{100 * over['gain']:+.1f} [{100 * over['low']:+.1f}, {100 * over['high']:+.1f}] (iter 1)"
        assert row == [
            method["method"], "SFT", "direct", *cells, gain, auc,
            "-" if consistency is None else f"{consistency:.2f}", f"{tokens:,}", f"{method['minutes']:.1f}",
        ]  # fmt: skip
    assert payload["methods"][0]["iterations"][1]["position_consistency"] is None  # direct compares nothing
    assert payload["methods"][1]["iterations"][1]["position_consistency"] is not None

    # Again: the finished runs are resumed (nothing redone) and the same numbers come back.
    def finished_at():
        with RunStore(out / "pairwise" / STORE_FILE) as store:
            return store._all("select iteration, stage, finished_at from stages order by rowid")

    stamps = finished_at()
    again = compare(DEFAULT_CONFIG, ["pairwise", "direct"], 0, 0.5, 1, out, results, overrides)
    assert finished_at() == stamps
    assert [s.method for s in again.summaries] == ["pairwise", "direct"]
    assert again.summaries[0].iterations == payload["methods"][1]["iterations"]
    assert [row[0] for row in table_rows(results.read_text())] == ["pairwise", "direct"]

    # A run directory made with other settings is not mixed into the comparison.
    with pytest.raises(AutodidactError) as err:
        compare(DEFAULT_CONFIG, ["direct"], 0, 1.0, 1, out, results, overrides)
    assert str(err.value) == (
        f"'{out / 'direct'}' holds a run with a different config (tasks.heldout_size: 2 there, 4 now). "
        "Delete it, or compare into another --output-dir."
    )

    # Moved elsewhere, the runs are resumed where they are now (their saved output_dir names the old place).
    moved = out.rename(tmp_path / "moved")
    again = compare(DEFAULT_CONFIG, ["pairwise"], 0, 0.5, 1, moved, results, overrides)
    assert again.summaries[0].iterations == payload["methods"][1]["iterations"] and not out.exists()


def by_hand_over_random(judged: Path, control: Path) -> float:
    """Mean over tasks of the mean per-prompt difference of the last held-out verdicts, graded here."""
    from autodidact.tasks import get_task

    def graded(run_dir):
        with RunStore(run_dir / STORE_FILE) as store:
            prompts = {p.id: p for p in store.prompts(split="heldout")}
            return {
                (prompts[s.prompt_id].task, s.prompt_id): get_task(prompts[s.prompt_id].task).verify(prompts[s.prompt_id], s.text)
                for s in store.samples(1) if s.prompt_id in prompts
            }

    a, b = graded(judged), graded(control)
    tasks = sorted({task for task, _ in a})
    return sum(sum(a[k] - b[k] for k in a if k[0] == t) / 2 for t in tasks) / len(tasks)


def test_dpo_runs_go_to_the_best_self_judges():
    final = {"direct": 0.30, "verifier": 0.90, "rubric": 0.35, "pairwise": None, "contrastive": 0.35, "ensemble": 0.1}
    assert best_self_judges(final, 2) == ["rubric", "contrastive"]  # the verifier is not a self-judge; ties: first
    assert best_self_judges(final, 0) == []
    assert best_self_judges({"direct-dpo": 0.9, "contrastive_revise": 0.8, "direct": 0.1}, 1) == ["direct"]
    assert best_self_judges({"random": 0.9, "direct": 0.1}, 1) == ["direct"]  # the control arm is no self-judge


def test_method_names():
    ensemble = ["judge.method=ensemble", "judge.members=[{method: direct}, {method: rubric}]"]
    assert method_overrides("ensemble") == ["judge.tasks={}", *ensemble]  # one method for every task
    assert method_overrides("pairwise-dpo") == ["judge.tasks={}", "judge.method=pairwise", "training.method=dpo"]
    assert method_overrides("random") == ["judge.tasks={}", "judge.method=random", "selection.min_score=null"]
    for bad in ("oracle", "contrastive_revise-dpo", "verifier-dpo-dpo", "random-dpo"):
        with pytest.raises(AutodidactError, match=f"--methods: unknown method '{bad}'"):
            method_overrides(bad)


def test_replace_section_appends_once_and_refuses_broken_markers(tmp_path):
    path = tmp_path / "R.md"
    path.write_text("# Results\n")
    replace_section(path, "table one")
    replace_section(path, "table two")
    assert path.read_text() == (
        f"# Results\n\n## Method comparison (`make compare`)\n\n{MARK_START}\ntable two\n{MARK_END}\n"
    )
    path.write_text(f"{MARK_END}\n{MARK_START}\n")
    with pytest.raises(AutodidactError, match="expected one"):
        replace_section(path, "x")
    assert path.read_text() == f"{MARK_END}\n{MARK_START}\n"
