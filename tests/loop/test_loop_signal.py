"""Keeping the agreement signal from decaying, in a run that is killed and resumed: the per-iteration score floor,
the replay of the base model's examples, and the signal-decay monitor's figures from its stored probe votes."""

from __future__ import annotations

import pytest
from tests.loop.conftest import plan_with
from tests.loop.test_loop import tiny_config

import autodidact
import autodidact.loop
from autodidact.loop import STORE_FILE
from autodidact.loop.stages import Train
from autodidact.loop.stages.monitor import vote_key
from autodidact.monitors.signal_decay import signal_metrics, votes_from_json
from autodidact.selection import select
from autodidact.store import RunStore
from autodidact.training import train_sft

FLOORS = [0.0, 5.0]  # iteration 1 keeps every prompt's best sample, iteration 2 only those scoring >= 5


def _selected_with(store: RunStore, iteration: int, floor: float):
    prompts = {p.id: p for p in store.prompts(split="train")}
    samples = [s for s in store.samples(iteration) if s.prompt_id in prompts]
    return select(prompts, samples, store.judgments(iteration, "random"), "top_k", 1, floor)


def test_a_resumed_run_selects_with_the_schedules_floor_replays_iteration_1_and_follows_the_votes(
    tiny_llama, tmp_path, killed_at
):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=2)
    # Votes judge arithmetic (scores 0-10 by agreement), a random score the instructions (uniform in [0, 10)).
    config["judge"] = {"method": "random", "tasks": {"arithmetic": {"method": "self_consistency", "consistency_score": "share"}}}
    config["selection"] = {"min_score_schedule": FLOORS, "replay_base": True}
    config["monitors"] = {"diversity": {"prompts": 0}, "signal_decay": {"prompts": 2, "samples": 3}}
    with pytest.raises(KeyboardInterrupt):
        autodidact.loop.run(config, plan=killed_at(config, "select", 2))

    trained = []  # the examples the resumed run's training received

    def recording_train_sft(policy, tokenizer, examples, *args, **kwargs):
        trained.extend(examples)
        return train_sft(policy, tokenizer, examples, *args, **kwargs)

    result = autodidact.resume(tmp_path / "run", plan=plan_with(config, Train(sft=recording_train_sft)))
    assert result.stop_reason == "reached max_iterations=2"

    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        first, second = store.selection(1), store.selection(2)
        assert first == _selected_with(store, 1, FLOORS[0])
        assert second == _selected_with(store, 2, FLOORS[1])  # the resumed select stage read the schedule
        assert len(second) < len(_selected_with(store, 2, 0.0)) and min(e.score for e in second) >= 5.0
        # Training at 2: its own selection, then every example of iteration 1 not selected again, once each.
        again = {(e.prompt_id, e.completion) for e in second}
        assert trained == second + [e for e in first if (e.prompt_id, e.completion) not in again]
        assert {(e.prompt_id, e.completion) for e in first} <= {(e.prompt_id, e.completion) for e in trained}
        assert len({(e.prompt_id, e.completion) for e in trained}) == len(trained)

        votes = [votes_from_json(store.get_meta(vote_key(it))) for it in range(3)]
        assert [len(v) for v in votes] == [2, 2, 2]  # two held-out arithmetic prompts every iteration
        for it in range(3):
            stored = {r["name"]: r["value"] for r in store.metrics(it) if r["name"].startswith("vote_") and not r["task"]}
            assert stored == signal_metrics(votes[it - 1] if it else [], votes[it], 0.5)
        assert store.metric(0, "vote_flip_rate") is None and store.metric(1, "vote_kept") is not None
