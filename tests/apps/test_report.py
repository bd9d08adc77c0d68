"""Tests of `write_report`: the page renders from a hand-built store, has every plot, and escapes text."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pytest

from autodidact.apps.report import write_report
from autodidact.apps.report.html import plot_specs
from autodidact.config import RunConfig, judge_config, to_yaml
from autodidact.errors import AutodidactError
from autodidact.records import Alert, Judgment, Prompt, Sample
from autodidact.store import RunStore

PLOT_IDS = ["plot-heldout", "plot-judge", "plot-bias", "plot-diversity", "plot-returns", "plot-reliability",
            "plot-timings", "plot-kept"]
XSS = "<script>alert(1)</script>"
STAGES = ("generate", "judge", "select", "train", "evaluate", "monitor")


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def make_run(tmp_path: Path, iterations: int = 2) -> Path:
    """A run directory with a config and a store filled by hand: iterations 0..`iterations`."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(to_yaml(RunConfig(name="t")), encoding="utf-8")
    prompts = [Prompt(f"p{i}", "arithmetic", "train", user(f"What is {i} + {i}?"), reference=str(2 * i))
               for i in range(3)]
    prompts.append(Prompt("h0", "arithmetic", "heldout", user("What is 5 + 5?"), reference="10"))
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.add_prompts(prompts)
        for it in range(iterations + 1):
            overall = {"heldout_metric": 0.4 + 0.1 * it, "pass_rate": 0.4 + 0.1 * it, "judge_score": 5.0 + it,
                       "judge_auc": 0.6, "mean_tokens": 12.0}
            if it > 0:
                samples = [Sample(f"it{it}-{p.id}-{k}", p.id, it, k, f"best answer {p.id} it{it}" if k == 0
                                  else f"worst answer {p.id} it{it}", 4) for p in prompts[:3] for k in range(2)]
                samples[1] = Sample(samples[1].id, "p0", it, 1, f"{XSS} worst p0 it{it}", 4)
                store.add_samples(samples)
                store.add_judgments([Judgment(s.id, "direct", 8.0 if s.index == 0 else 2.0,
                                              rationale=f"because {XSS}" if s.index == 1 else "good")
                                     for s in samples])
                store.finish_stage(it, "select", 0.1, {"kept": 3 + it})
                overall |= {"train_judge_score": 6.0 + it, "reference_judge_score": 5.5, "position_consistency": 0.9,
                            "tie_rate": 0.1, "score_length_corr": 0.2, "disagreement": 0.1, "vote_margin": 0.5,
                            "distinct_1": 0.5, "distinct_2": 0.7, "self_bleu": 0.3, "embedding_similarity": 0.6,
                            "gain": 0.1 - 0.05 * it, "gain_trend": -0.05, "human_ratings": 12.0,
                            "human_spearman": 0.5, "human_kappa": 0.4, "human_accuracy": 0.7, "human_agreement": 0.5}
            store.add_metrics(it, overall)
            store.add_metrics(it, {"pass_rate": 0.4 + 0.1 * it, "pass_low": 0.2, "pass_high": 0.7, "judge_score": 5.0,
                                   "judge_auc": 0.6, "mean_tokens": 12.0, "n": 48.0}, task="arithmetic")
            for stage in STAGES:
                if it > 0 or stage == "evaluate":
                    if not store.stage_done(it, stage):
                        store.finish_stage(it, stage, 1.0 + it)
        if iterations:
            store.add_alerts([Alert(1, "reward_hacking", f"judge score up, held-out flat {XSS}", stop=True)])
        store.set_meta("stop_reason", "max_iterations reached")
        store.set_meta("best_iteration", "2")
    return run_dir


def plot_ids(page: str) -> list[str]:
    return re.findall(r'<img id="([^"]+)" src="data:image/png;base64,', page)


def test_report_renders_every_plot_alerts_examples_and_escapes(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    start = time.perf_counter()
    path = write_report(run_dir)
    print(f"write_report: {time.perf_counter() - start:.2f}s")
    assert path == run_dir / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert page.count("<img") == 8
    assert plot_ids(page) == PLOT_IDS == [spec.id for spec in plot_specs()]
    assert "judge score up, held-out flat" in page and "No alerts" not in page
    assert "best answer p1 it2" in page and "worst answer p1 it2" in page  # latest iteration's best and worst
    assert "best answer p1 it1" in page  # older iterations too (collapsed)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; worst p0 it2" in page  # sample
    assert "because &lt;script&gt;alert(1)&lt;/script&gt;" in page  # rationale
    assert "<script" not in page  # no script at all: self-contained and nothing unescaped
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing loaded from outside
    config = RunConfig(name="t")
    for value in ("max_iterations reached", config.model.name, config.judge.method, config.training.method):
        assert f"<td>{value}</td>" in page


def test_report_of_a_base_model_only_run_has_all_plots(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, iterations=0)
    out = write_report(run_dir, tmp_path / "out" / "r.html")
    page = out.read_text(encoding="utf-8")
    assert plot_ids(page) == PLOT_IDS
    assert "No alerts" in page and "No judged training samples yet" in page
    assert "no self-evaluation" not in page  # every task is judged


def test_report_says_which_tasks_train_without_self_evaluation(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, iterations=0)
    routed = RunConfig(name="t").model_copy(update={"judge": judge_config(tasks={"instructions": {"method": "random"}})})
    (run_dir / "config.yaml").write_text(to_yaml(routed), encoding="utf-8")
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert page.count('<p class="control-note">instructions: no self-evaluation.') == 1 and "arithmetic: no self" not in page


def test_report_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(AutodidactError, match="no run.sqlite"):
        write_report(tmp_path)
    assert not (tmp_path / "run.sqlite").exists()


def test_each_plot_draws_a_png_even_without_rows() -> None:
    specs = plot_specs("pairs")
    assert len(specs) == 8
    for spec in specs:
        uri = spec.draw([])
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n", spec.id


def test_report_shows_the_paraphrased_heldout_and_the_judge_reliability_alert(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        for it in range(3):
            store.add_metrics(it, {"paraphrase_pass_rate": 0.3 + 0.05 * it})
            store.add_metrics(it, {"paraphrase_pass_rate": 0.3 + 0.05 * it, "paraphrase_pass_low": 0.125,
                                   "paraphrase_pass_high": 0.55, "paraphrase_n": 48.0}, task="arithmetic")
        store.add_alerts([Alert(0, "judge_reliability", "the self-judge's held-out scores barely track correctness "
                                "on arithmetic (AUC 0.52; 12 of 48 answers pass)")])
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert "<th>arithmetic paraphrased</th>" in page and "<th>paraphrase_pass_rate</th>" in page
    assert '<td class="num">40.0 [12.5, 55.0]</td>' in page  # iteration 2, with its 95% interval
    assert "phrasings the training prompts never use" in page
    assert "judge_reliability" in page and "barely track correctness on arithmetic (AUC 0.52" in page
    # A run without the set (one begun before it existed, or sources only) shows no such column.
    (tmp_path / "old").mkdir()
    assert "paraphrased</th>" not in write_report(make_run(tmp_path / "old")).read_text(encoding="utf-8")


def test_report_output_folders_are_created_and_the_run_is_only_read(tmp_path):
    run = make_run(tmp_path)
    before = sorted(p.name for p in run.iterdir())
    page = write_report(run, tmp_path / "new" / "deeper" / "report.html")
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written into the run (-wal, -shm, ...)
    assert sorted(p.name for p in page.parent.iterdir()) == ["report.html"]  # no temporary file left
