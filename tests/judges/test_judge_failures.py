"""The loop's judge failure policy and judge diagnostics, on tiny runs (a few seconds each)."""

from __future__ import annotations

import math
from unittest.mock import ANY

import pytest
import torch

import autodidact
from autodidact.config import validate_config
from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeResult
from autodidact.judges.health import failure_error, judge_stats
from autodidact.loop import STORE_FILE
from autodidact.loop.context import build_context
from autodidact.loop.runner import Runner
from autodidact.loop.stages import plan_for
from autodidact.records import Judgment
from autodidact.store import RunStore

# Arithmetic prompts have an int reference, instruction prompts a dict: this
# verifier fails on every arithmetic sample and passes every instruction one.
GRADER = '''
def arithmetic_ungradable(prompt, response, reference):
    if isinstance(reference, int):
        raise ValueError("cannot grade arithmetic")
    return True


def always_fails(prompt, response, reference):
    raise ValueError("judge server down")


def arithmetic_ungradable_rest_by_length(prompt, response, reference):
    if isinstance(reference, int):
        raise ValueError("cannot grade arithmetic")
    return len(response) % 3 / 2  # rewards that differ within a group, so GRPO does move the adapter
'''


def tiny_program_run(model_dir: str, out, name: str, **judge) -> dict:
    return {
        "name": name,
        "output_dir": str(out),
        "model": {"name": model_dir, "dtype": "float32", "device": "cpu"},
        "tasks": {"train_size": 6, "heldout_size": 2, "prompts_per_iteration": 3, "min_heldout": 2},
        "generation": {"samples_per_prompt": 2, "max_new_tokens": 4},
        "judge": {"method": "program", "program": "tiny_grader:arithmetic_ungradable", **judge},
        "training": {"lora_r": 2, "lora_alpha": 4, "batch_size": 4},
        "evaluation": {"max_new_tokens": 4},
        "stopping": {"max_iterations": 1, "patience": 5},
    }


@pytest.fixture
def grader(tmp_path, monkeypatch):
    folder = tmp_path / "grader"
    folder.mkdir()
    (folder / "tiny_grader.py").write_text(GRADER)
    monkeypatch.syspath_prepend(str(folder))


def test_run_stops_before_training_when_most_judgments_fail(tiny_llama, tmp_path, grader):
    config = tiny_program_run(tiny_llama, tmp_path, "fails", max_failed_share=0.4)
    with pytest.raises(AutodidactError) as err:
        autodidact.run(config)
    # 2 tasks x 3 prompts x 2 samples = 12 judgments; the 6 arithmetic ones fail.
    assert str(err.value) == (
        "iteration 1: 6 of 12 training judgments failed (50% > judge.max_failed_share=0.4), so nothing is trained "
        "on the rest. Most common reasons: 'ValueError: cannot grade arithmetic' (6). Fix the judge (judge.method, "
        "judge.mode, judge.model or its server, judge.program), or raise judge.max_failed_share to train on the "
        "judgments that succeeded."
    )
    run_dir = tmp_path / "fails"
    assert not (run_dir / "checkpoints").exists()
    with RunStore(run_dir / STORE_FILE) as store:
        assert store.stage_done(1, "generate") and not store.stage_done(1, "judge")
        assert not store.stage_done(1, "select") and not store.stage_done(1, "train")
        assert store.counts()["checkpoints"] == 0
        assert store.selection(1) == []
        train_ids = {s.id for s in store.samples(1)}
        assert len(train_ids) == 12
        assert not train_ids & {j.sample_id for j in store.judgments(1)}  # nothing stored: redone on resume


def test_run_at_the_limit_trains_and_records_the_judges_figures(tiny_llama, tmp_path, grader):
    result = autodidact.run(tiny_program_run(tiny_llama, tmp_path, "ok"))  # 6 of 12 failed: not more than 0.5
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "ok" / STORE_FILE) as store:
        info = {"program_timeouts": 0.0, "judgments": 12, "failed": 6, "judge_tokens": 0}  # a program writes no text
        assert store.stage_info(1, "judge") == info | {"peak_rss_mib": ANY}
        assert store.metric(1, "program_timeouts") == 0.0
        assert store.counts()["checkpoints"] == 1
        assert {e.score for e in store.selection(1)} == {10.0}  # only the graded instruction samples
    assert result.iterations[1]["program_timeouts"] == 0.0
    assert result.iterations[1]["judge_failed_train"] == 6


@pytest.mark.parametrize(
    ("program", "max_failed_share", "failed"),
    [
        ("always_fails", 0.5, "12 of 12 training judgments failed (100% > judge.max_failed_share=0.5)"),
        ("arithmetic_ungradable_rest_by_length", 0.4, "6 of 12 training judgments failed (50% > "
         "judge.max_failed_share=0.4)"),
    ],
)
def test_grpo_run_stops_without_a_checkpoint_when_too_many_rewards_fail(
    tiny_llama, tmp_path, grader, program, max_failed_share, failed
):
    """GRPO judges inside training: the same limit applies to its rewards, and the in-place update is undone
    (with some rewards that differ, the adapter did move before the check)."""
    config = tiny_program_run(
        tiny_llama, tmp_path, "grpo", program=f"tiny_grader:{program}", max_failed_share=max_failed_share
    )
    config["training"] |= {"method": "grpo", "learning_rate": 1e-2}
    run_dir = tmp_path / "grpo"
    run_dir.mkdir()
    with RunStore(run_dir / STORE_FILE) as store:
        loop = build_context(validate_config(config), run_dir, store)
        adapter = {n: p.detach().clone() for n, p in loop.policy.named_parameters() if p.requires_grad}
        with pytest.raises(AutodidactError) as err:
            Runner(loop, plan_for(loop.config)).run()
        # 2 tasks x 3 prompts x 2 completions: all failed, or the 6 arithmetic ones.
        assert str(err.value).startswith(f"iteration 1: {failed}, so nothing is trained on the rest.")
        assert store.stage_done(1, "generate") and not store.stage_done(1, "train")  # redone on resume
        assert store.counts()["checkpoints"] == 0 and not (run_dir / "checkpoints").exists()
        assert store.samples(1) == [] and store.judgments(1) == []  # no rollouts stored
        assert all(torch.equal(adapter[n], p) for n, p in loop.policy.named_parameters() if n in adapter)


def test_failure_share_is_strictly_more_than_the_limit():
    ok, bad = Judgment("a", "j", 5.0), Judgment("b", "j", None, error="no score in the judge's output")
    assert failure_error(1, [ok, bad], 0.5) is None
    assert failure_error(1, [], 0.0) is None
    assert failure_error(1, [ok, ok, bad], 0.0) is not None
    message = str(failure_error(2, [bad, bad, Judgment("c", "j", None), ok], 0.5))
    assert message.startswith("iteration 2: 3 of 4 training judgments failed (75% > judge.max_failed_share=0.5)")
    assert "Most common reasons: 'no score in the judge's output' (2); 'no reason given' (1)." in message


def test_judge_stats_become_storable_metrics():
    stats = {"position_consistency": 0.75, "vote_margin": 2, "tie_rate": math.nan, "empty": None, "odd": math.inf}
    stored = judge_stats(JudgeResult([], stats))
    assert stored == {"position_consistency": 0.75, "vote_margin": 2.0, "tie_rate": None, "empty": None, "odd": None}
    assert judge_stats(JudgeResult([])) == {}
