"""The CLI: user errors are one line, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from autodidact.config import RunConfig


def autodidact(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "autodidact.apps.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--set", "trainingg.lr=1"], "unknown key 'trainingg'"),
        (["run", "--set", "training.batch_size=abc"], "training.batch_size"),
        (["run", "missing.yaml"], "config file 'missing.yaml' not found"),
        (["run", "--set", "judge.method=oracle"], "unknown judge 'oracle'"),
        (["run", "--set", "tasks.names=[poetry]"], "unknown task 'poetry'"),
        (["run", "--set", "model.name=./nowhere", "--set", "name=x"], "model: './nowhere'"),
        (["resume", "not-a-run"], "is not a run directory"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, args, needle):
    proc = autodidact(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "runs").exists()


def test_init_writes_a_config_that_runs_as_is(tmp_path):
    proc = autodidact("init", "my.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert RunConfig.model_validate(yaml.safe_load((tmp_path / "my.yaml").read_text())) == RunConfig()
    again = autodidact("init", "my.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr


def test_run_and_eval_on_a_tiny_model(tmp_path, tiny_llama):
    proc = autodidact(
        "--quiet", "run", "--set", f"model.name={tiny_llama}", "--set", "name=t", "--set", "stopping.max_iterations=1",
        "--set", "tasks.train_size=4", "--set", "tasks.heldout_size=3", "--set", "tasks.prompts_per_iteration=2",
        "--set", "generation.max_new_tokens=4", "--set", "evaluation.max_new_tokens=4", "--set", "model.dtype=float32",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Held-out results" in proc.stdout and "Seconds per stage" in proc.stdout
    assert "Stopped: reached max_iterations=1" in proc.stdout
    saved = yaml.safe_load((tmp_path / "runs" / "t" / "config.yaml").read_text())
    assert saved["tasks"]["train_size"] == 4 and saved["model"]["name"] == tiny_llama
    checkpoint = tmp_path / "runs" / "t" / "checkpoints" / "iter-1"
    proc = autodidact("--quiet", "eval", str(checkpoint), "--task", "arithmetic", "--heldout-size", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "arithmetic" in proc.stdout and "instructions" not in proc.stdout
    # With the run's seed, held-out size, answer length and dtype, `eval` reproduces the run's own evaluation.
    from autodidact.apps.evaluate import evaluate_model
    from autodidact.store import RunStore

    row = evaluate_model(str(checkpoint), ["arithmetic"], 3, 0, "none", max_new_tokens=4, dtype="float32")
    with RunStore(tmp_path / "runs" / "t" / "run.sqlite") as store:
        for name in ("pass_rate", "mean_tokens"):
            assert row["tasks"]["arithmetic"][name] == store.metric(1, name, task="arithmetic")
