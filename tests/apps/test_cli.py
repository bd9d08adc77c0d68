"""The CLI: user errors are one line, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from unittest import mock

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
        "--set", "tasks.train_size=4", "--set", "tasks.heldout_size=4", "--set", "tasks.prompts_per_iteration=2",
        "--set", "generation.max_new_tokens=4", "--set", "evaluation.max_new_tokens=4", "--set", "model.dtype=float32",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Held-out results" in proc.stdout and "Seconds per stage" in proc.stdout
    assert "Stopped: reached max_iterations=1" in proc.stdout
    saved = yaml.safe_load((tmp_path / "runs" / "t" / "config.yaml").read_text())
    assert saved["tasks"]["train_size"] == 4 and saved["model"]["name"] == tiny_llama
    checkpoint = tmp_path / "runs" / "t" / "checkpoints" / "iter-1"
    proc = autodidact("--quiet", "eval", str(checkpoint), "--task", "arithmetic", "--heldout-size", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "arithmetic" in proc.stdout and "instructions" not in proc.stdout
    # With the run's seed, held-out size, answer length and dtype, `eval` reproduces the run's own evaluation.
    from autodidact.apps.evaluate import evaluate
    from autodidact.store import RunStore

    report = evaluate(str(checkpoint), tasks=["arithmetic"], heldout_size=4, seed=0, judge="none", max_new_tokens=4,
                      dtype="float32")
    metrics = report.evaluations[0].result.metrics
    with RunStore(tmp_path / "runs" / "t" / "run.sqlite") as store:
        for name in ("pass_rate", "mean_tokens"):
            assert metrics["arithmetic"][name] == store.metric(1, name, task="arithmetic")


# --- a run that could not be measured is refused before any work, and every fix it suggests runs ------------

TINY_RUN = [
    "--set", "model.dtype=float32", "--set", "model.device=cpu", "--set", "monitors.enabled=false",
    "--set", "stopping.max_iterations=1", "--set", "tasks.prompts_per_iteration=1", "--set", "tasks.train_size=4",
    "--set", "generation.samples_per_prompt=2", "--set", "generation.max_new_tokens=2",
    "--set", "evaluation.max_new_tokens=2", "--set", "evaluation.judge_heldout=false",
]


def _prompt_file(path, n: int):
    path.write_text("".join(json.dumps({"prompt": f"What is {i} + {i}?", "reference": str(2 * i)}) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def _source(path, **fields) -> str:
    return "tasks.sources=" + json.dumps([{"type": "file", "name": "mine", "path": str(path), **fields}])


def _run(tmp_path, tiny_llama, capsys, name: str, *args: str) -> tuple[int, str]:
    """`autodidact run` in this process (a subprocess costs seconds of imports): exit code, stderr."""
    from autodidact.apps import cli

    argv = ["autodidact", "-q", "run", "--set", f"model.name={tiny_llama}", "--set", f"name={name}",
            "--set", f"output_dir={tmp_path / 'runs'}", *TINY_RUN, *args]
    capsys.readouterr()
    with mock.patch.object(sys, "argv", argv), pytest.raises(SystemExit) as exit_:
        cli.main()
    return exit_.value.code or 0, capsys.readouterr().err


def _heldout(tmp_path, name: str) -> int:
    from autodidact.store import RunStore

    with RunStore(tmp_path / "runs" / name / "run.sqlite") as store:
        return len(store.prompts(split="heldout"))


def test_a_source_with_too_few_heldout_prompts_is_refused_and_each_suggested_fix_runs(tmp_path, tiny_llama, capsys):
    mine = _prompt_file(tmp_path / "mine.jsonl", 12)
    code, err = _run(tmp_path, tiny_llama, capsys, "refused", "--set", "tasks.names=[]", "--set", _source(mine))
    assert code == 2
    assert err.strip() == (
        f"error: tasks: only 1 held-out prompt for source 'mine' (12 prompts in {mine}, heldout_ratio 0.1); at least "
        "4 are needed to measure the run. Add prompts, raise tasks.sources.0.heldout_ratio, or set "
        "tasks.min_heldout=1 to run anyway."
    )
    assert not (tmp_path / "runs").exists()  # refused before anything was written
    # "set tasks.min_heldout=1"
    code, err = _run(tmp_path, tiny_llama, capsys, "anyway", "--set", "tasks.names=[]", "--set", _source(mine),
                     "--set", "tasks.min_heldout=1")
    assert code == 0, err
    assert _heldout(tmp_path, "anyway") == 1
    # "raise tasks.sources.0.heldout_ratio", as that key
    code, err = _run(tmp_path, tiny_llama, capsys, "ratio", "--set", "tasks.names=[]", "--set", _source(mine),
                     "--set", "tasks.sources.0.heldout_ratio=0.34")
    assert code == 0, err
    assert _heldout(tmp_path, "ratio") == 4
    # "Add prompts"
    more = _prompt_file(tmp_path / "more.jsonl", 40)
    code, err = _run(tmp_path, tiny_llama, capsys, "more", "--set", "tasks.names=[]", "--set", _source(more))
    assert code == 0, err
    assert _heldout(tmp_path, "more") == 4


def test_a_source_of_one_row_is_refused_and_min_heldout_0_trains_it_unmeasured(tmp_path, tiny_llama, capsys):
    one = _prompt_file(tmp_path / "one.jsonl", 1)
    code, err = _run(tmp_path, tiny_llama, capsys, "one", "--set", "tasks.names=[]", "--set", _source(one))
    assert code == 2
    assert err.strip() == (
        f"error: tasks: no held-out prompt for source 'mine' (1 prompt in {one}, heldout_ratio 0.1); at least 4 are "
        "needed to measure the run. Add prompts (a source holds out rows only when it has two different ones), or "
        "set tasks.min_heldout=0 to train on it unmeasured."
    )
    code, err = _run(tmp_path, tiny_llama, capsys, "one", "--set", "tasks.names=[]", "--set", _source(one),
                     "--set", "tasks.min_heldout=0")
    assert code == 0, err
    assert _heldout(tmp_path, "one") == 0


def test_heldout_ratio_0_is_refused_with_the_ratio_to_raise(tmp_path, tiny_llama, capsys):
    mine = _prompt_file(tmp_path / "mine.jsonl", 12)
    code, err = _run(tmp_path, tiny_llama, capsys, "zero", "--set", "tasks.names=[]",
                     "--set", _source(mine, heldout_ratio=0))
    assert code == 2
    assert err.strip().endswith(
        f"(12 prompts in {mine}, heldout_ratio 0); at least 4 are needed to measure the run. Add prompts, raise "
        "tasks.sources.0.heldout_ratio, or set tasks.min_heldout=0 to train on it unmeasured."
    )


def test_a_builtin_task_below_the_minimum_is_refused_and_min_heldout_runs_it(tmp_path, tiny_llama, capsys):
    args = ("--set", "tasks.names=[arithmetic]", "--set", "tasks.heldout_size=2")
    code, err = _run(tmp_path, tiny_llama, capsys, "small", *args)
    assert code == 2
    assert err.strip() == (
        "error: tasks: only 2 held-out prompts for task 'arithmetic' (tasks.heldout_size 2); at least 4 are needed "
        "to measure the run. Raise tasks.heldout_size to 4, or set tasks.min_heldout=2 to run anyway."
    )
    code, err = _run(tmp_path, tiny_llama, capsys, "small", *args, "--set", "tasks.min_heldout=2")
    assert code == 0, err
    assert _heldout(tmp_path, "small") == 2
    # "Raise tasks.heldout_size to 4": test_run_and_eval_on_a_tiny_model runs with 4.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "default", "--max-new-tokens", "0"],
         "'--max-new-tokens': Input should be greater than or equal to 1 (got 0)"),
        (["chat", "default", "--temperature", "-1"],
         "'--temperature': Input should be greater than or equal to 0 (got -1)"),
        (["chat", "default", "--temperature", "nan"],
         "'--temperature': Input should be less than or equal to 5 (got nan)"),
        (["report", "runs/x", "--examples", "-3"], "'--examples': Input should be greater than or equal to 0 (got -3)"),
        (["eval", "default", "--seed", "1" * 50],
         f"'--seed': Input should be less than or equal to 2147483647 (got {'1' * 37}...)"),
    ],
)
def test_a_number_out_of_range_names_the_option_and_its_bound_and_help_shows_the_range(args, message, capsys):
    from autodidact.apps import cli

    with mock.patch.object(sys, "argv", ["autodidact", *args]), pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    expected = f"error: Invalid value for {message}; check `autodidact {args[0]} --help`."
    assert capsys.readouterr().err.strip() == expected
    with mock.patch.object(sys, "argv", ["autodidact", args[0], "--help"]), pytest.raises(SystemExit):
        cli.main()
    assert re.search(r"\[-?[\d.]+<=x<=[\d.]+\]", capsys.readouterr().out)  # the help shows the whole range
