"""`autodidact eval` on the user's own data: a prompt file, a config's sources, a run directory, and --compare.

The printed numbers are checked against what the run stored and against a computation done here: the
verifier's grade of each answer, and the paired t interval from its definition.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from statistics import fmean, stdev
from unittest import mock

import pytest
from scipy.stats import t as student_t

import autodidact
from autodidact.apps.evaluate import evaluate
from autodidact.store import RunStore

QUESTIONS = [f"What is {a} + {a + 2}? Answer with just the number." for a in range(3, 30, 3)]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """`autodidact ARGS` in this process: exit code, stdout, stderr."""
    from autodidact.apps import cli as entry

    capsys.readouterr()
    with mock.patch.object(sys, "argv", ["autodidact", "-q", *args]), pytest.raises(SystemExit) as exit_:
        entry.main()
    out, err = capsys.readouterr()
    return exit_.value.code or 0, out, err


def table_row(text: str, first: str) -> list[str]:
    """The cells of the rich table row that starts with `first` (cells are separated by box characters)."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def pct(value: float) -> str:
    return f"{100 * value + 0.0:.1f}"


def signed(value: float) -> str:
    return f"{100 * value + 0.0:+.1f}"


def t_interval(d: list[float]) -> tuple[float, float, float]:
    """mean(d) and its 95% paired t interval, from the definition."""
    mean = fmean(d)
    half = student_t.ppf(0.975, len(d) - 1) * stdev(d) / math.sqrt(len(d))
    return mean, mean - half, mean + half


@pytest.fixture
def answers_file(tmp_path, tiny_llama) -> tuple[Path, list[str]]:
    """A prompt file whose references are the tiny model's own greedy answers on every other row.

    So the model passes exactly those rows (exact match), and any other model is measured against them.
    """
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS), encoding="utf-8")
    report = evaluate(tiny_llama, source=plain, judge="none", max_new_tokens=4, dtype="float32")
    answers = {s.prompt_id: s.text for s in report.evaluations[0].result.samples}
    texts = [answers[p.id] for p in report.prompts]  # in file order
    assert all(text.strip() for text in texts)  # a reference must not be empty (it would mean "no reference")
    rows = [{"prompt": q, "reference": texts[i] if i % 2 == 0 else "no model says this"}
            for i, q in enumerate(QUESTIONS)]
    mine = tmp_path / "my prompts.jsonl"
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return mine, texts


def test_eval_source_grades_every_row_and_a_model_compared_with_itself_differs_by_zero(
    answers_file, tiny_llama, capsys
):
    mine, _ = answers_file
    code, out, err = cli(capsys, "eval", tiny_llama, "--source", str(mine), "--compare", tiny_llama, "--judge", "none",
                         "--max-new-tokens", "4", "--dtype", "float32")
    assert code == 0, err
    passed = sum(1 for i in range(len(QUESTIONS)) if i % 2 == 0) / len(QUESTIONS)  # rows whose reference is its answer
    # The task is named after the file; both models pass the same rows: a zero difference with a zero-width interval.
    assert table_row(out, "my_prompts") == ["my_prompts", "pass %", str(len(QUESTIONS)), pct(passed), pct(passed),
                                            "+0.0 [+0.0, +0.0]"]


def test_eval_compare_prints_the_paired_difference_and_its_t_interval(answers_file, tiny_model_dirs, capsys):
    mine, _ = answers_file
    other = tiny_model_dirs["qwen2"]
    code, out, err = cli(capsys, "eval", tiny_model_dirs["llama"], "--source", str(mine), "--compare", other,
                         "--judge", "none", "--max-new-tokens", "4", "--dtype", "float32")
    assert code == 0, err
    # Direct computation: grade the other model's answers against the references by hand.
    report = evaluate(other, source=mine, judge="none", max_new_tokens=4, dtype="float32")
    answers = {s.prompt_id: s.text for s in report.evaluations[0].result.samples}
    theirs = [answers[p.id] for p in report.prompts]  # in file order
    rows = [json.loads(line) for line in mine.read_text(encoding="utf-8").splitlines()]
    norm = lambda s: " ".join(s.split()).casefold()  # noqa: E731  (exact match ignores case and spacing)
    a = [1.0 if i % 2 == 0 else 0.0 for i in range(len(rows))]
    b = [1.0 if norm(text) == norm(r["reference"]) else 0.0 for text, r in zip(theirs, rows, strict=True)]
    mean, low, high = t_interval([x - y for x, y in zip(a, b, strict=True)])
    assert table_row(out, "my_prompts") == [
        "my_prompts", "pass %", str(len(rows)), pct(fmean(a)), pct(fmean(b)),
        f"{signed(mean)} [{signed(low)}, {signed(high)}]",
    ]


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, tmp_path_factory) -> Path:
    """A finished one-iteration run on the tiny model with a built-in task and the user's prompt file."""
    root = tmp_path_factory.mktemp("eval-run")
    data = root / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "reference": str(i)}) + "\n" for i, q in enumerate(QUESTIONS[:8])),
                    encoding="utf-8")
    config = {
        "name": "mine", "output_dir": str(root / "runs"), "seed": 3,
        "model": {"name": tiny_llama, "dtype": "float32", "device": "cpu"},
        "tasks": {"names": ["arithmetic"], "train_size": 4, "heldout_size": 4, "prompts_per_iteration": 2,
                  "sources": [{"type": "file", "name": "qa", "path": str(data), "heldout_ratio": 0.5}]},
        "generation": {"samples_per_prompt": 2, "max_new_tokens": 4},
        "evaluation": {"max_new_tokens": 4},
        "stopping": {"max_iterations": 1},
        "monitors": {"enabled": False},
    }
    autodidact.run(config)
    return root / "runs" / "mine"


@pytest.mark.parametrize("iteration", ["1", "base"])
def test_eval_run_dir_reproduces_the_figures_the_run_stored(tiny_run, iteration):
    report = evaluate(str(tiny_run), iteration=iteration)
    number = 1 if iteration == "1" else 0
    metrics = report.evaluations[0].result.metrics
    with RunStore(tiny_run / "run.sqlite") as store:
        assert [p.id for p in report.prompts] == [p.id for p in store.prompts(split="heldout")]
        assert sorted(metrics) == ["", "arithmetic", "qa"]
        for task in ("arithmetic", "qa"):
            for name in ("pass_rate", "n", "mean_tokens", "judge_score"):
                assert metrics[task][name] == store.metric(number, name, task=task), (task, name)
        assert metrics[""]["heldout_metric"] == store.metric(number, "heldout_metric")


def test_eval_run_dir_compare_base_prints_the_stored_figures_and_their_difference(tiny_run, capsys):
    code, out, err = cli(capsys, "eval", str(tiny_run), "--iteration", "1", "--compare", "base", "--judge", "none")
    assert code == 0, err
    assert f"A = {tiny_run} iteration 1, B = {tiny_run} iteration 0 (the base model)" in " ".join(out.split())
    with RunStore(tiny_run / "run.sqlite") as store:
        for task in ("arithmetic", "qa"):
            after, before = (store.metric(it, "pass_rate", task=task) for it in (1, 0))
            n = int(store.metric(1, "n", task=task))
            cells = table_row(out, task)
            assert cells[:5] == [task, "pass %", str(n), pct(after), pct(before)]
            # Every prompt is graded by both: the paired mean is the difference of the means.
            assert cells[5].split(" [")[0] == signed(after - before)


def test_eval_source_grades_with_the_verifier_given(tmp_path, tiny_llama):
    patterns = ["[a-m]", "[n-z]", "[0-9]", " ", "zzzz"]
    mine = tmp_path / "patterns.jsonl"
    rows = [{"prompt": QUESTIONS[i], "reference": p} for i, p in enumerate(patterns)]
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = evaluate(tiny_llama, source=mine, verifier="regex", judge="none", max_new_tokens=4, dtype="float32")
    answers = {s.prompt_id: s.text for s in report.evaluations[0].result.samples}
    graded = zip(patterns, report.prompts, strict=True)
    expected = [1.0 if re.search(p, answers[prompt.id]) else 0.0 for p, prompt in graded]
    assert report.evaluations[0].result.metrics["patterns"]["pass_rate"] == fmean(expected)
