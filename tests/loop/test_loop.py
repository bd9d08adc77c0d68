"""The loop end to end on a tiny model: stages, metrics, checkpoints, resume without duplicates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import autodidact
import autodidact.loop
from autodidact.errors import AutodidactError
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from crash_run import tiny_run_config  # noqa: E402  (one tiny run for the loop tests and the crash harness)


def tiny_config(model_dir: str, out, name: str = "run", **stopping) -> dict:
    """The crash harness's tiny run (benchmarks/crash_run.py) with the default diversity probe."""
    config = tiny_run_config(model_dir, out, name)
    del config["monitors"]
    config["stopping"] = {"max_iterations": 2, "patience": 5, **stopping}
    return config


def _table(run_dir, sql: str):
    with RunStore(run_dir / STORE_FILE) as store:
        return store._all(sql)


def test_run_produces_every_stage_metric_and_checkpoint(tiny_llama, tmp_path):
    result = autodidact.run(tiny_config(tiny_llama, tmp_path))
    assert [row["iteration"] for row in result.iterations] == [0, 1, 2]
    assert result.stop_reason == "reached max_iterations=2"
    for row in result.iterations:
        assert set(row["tasks"]) == {"arithmetic", "instructions"}
        for task in row["tasks"].values():
            assert 0.0 <= task["pass_low"] <= task["pass_rate"] <= task["pass_high"] <= 1.0
            assert task["n"] == 4.0
    assert set(result.iterations[1]["seconds"]) == {"generate", "judge", "select", "train", "evaluate", "monitor"}
    if sys.platform == "linux":  # each stage's own peak resident memory: at least the loaded model's
        peaks = result.iterations[1]["peak_rss_mib"]
        assert set(peaks) == set(result.iterations[1]["seconds"]) and min(peaks.values()) >= 50
    # The monitors measured every iteration; training-side measures exist from iteration 1 on.
    for row in result.iterations:
        assert 0.0 < row["distinct_1"] <= 1.0 and 0.0 <= row["self_bleu"] <= 1.0
        assert -1.0 <= row["embedding_similarity"] <= 1.0
    assert "train_judge_score" not in result.iterations[0] and result.iterations[1]["train_judge_score"] is not None
    assert result.iterations[2]["gain"] == pytest.approx(
        result.iterations[2]["heldout_metric"] - result.iterations[1]["heldout_metric"]
    )
    run_dir = tmp_path / "run"
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "iter-1" / "adapter_config.json").is_file()
    # 2 tasks x 3 prompts x 2 samples per iteration, plus 2 x 4 held-out answers and 2 x 4 answers to the
    # paraphrased held-out prompts (tasks.paraphrase_heldout_size defaults to heldout_size) per evaluation.
    with RunStore(run_dir / STORE_FILE) as store:
        assert len(store.samples(1)) == 2 * 3 * 2 + 2 * 4 + 2 * 4
        assert len(store.samples(0)) == 2 * 4 + 2 * 4
        assert store.counts()["checkpoints"] == 2


def test_resume_after_an_interrupted_stage_redoes_it_once(tiny_llama, tmp_path, killed_at):
    reference = autodidact.run(tiny_config(tiny_llama, tmp_path, name="ref"))

    config = tiny_config(tiny_llama, tmp_path, name="crashed")
    with pytest.raises(KeyboardInterrupt):
        autodidact.loop.run(config, plan=killed_at(config, "train", 2))
    crashed_dir = tmp_path / "crashed"
    assert _table(crashed_dir, "select count(*) from stages where iteration = 2 and stage = 'train'") == [(0,)]

    resumed = autodidact.resume(crashed_dir)

    with RunStore(tmp_path / "ref" / STORE_FILE) as ref, RunStore(crashed_dir / STORE_FILE) as got:
        assert got.counts() == ref.counts()  # nothing lost, nothing duplicated
    assert _table(crashed_dir, "select count(*) from (select id from samples group by id having count(*) > 1)") == [(0,)]
    # fp32 on CPU with fixed seeds: the resumed run reaches the same numbers.
    assert [r["pass_rate"] for r in resumed.iterations] == [r["pass_rate"] for r in reference.iterations]
    assert [r["judge_score"] for r in resumed.iterations] == pytest.approx([r["judge_score"] for r in reference.iterations])
    # Resuming a finished run does nothing and reports the same result.
    assert autodidact.resume(crashed_dir).iterations == resumed.iterations


def test_existing_run_directory_is_not_touched(tiny_llama, tmp_path):
    autodidact.run(tiny_config(tiny_llama, tmp_path, name="r", max_iterations=1))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")}
    with pytest.raises(AutodidactError, match="already holds a run"):
        autodidact.run(tiny_config(tiny_llama, tmp_path, name="r", max_iterations=1))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")} == before


def test_bad_model_writes_nothing(tmp_path):
    with pytest.raises(AutodidactError, match="model"):
        autodidact.run(tiny_config(str(tmp_path / "no-such-model"), tmp_path, name="x"))
    assert not (tmp_path / "x").exists()


def test_verifier_judge_trains_on_ground_truth_only_with_valid_scores(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, name="v", max_iterations=1)
    config["judge"] = {"method": "verifier"}
    autodidact.run(config)
    scores = _table(tmp_path / "v", "select distinct score from judgments where judge = 'verifier'")
    assert {s for (s,) in scores} <= {0.0, 10.0}
