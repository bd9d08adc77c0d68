"""Monitors and human checkpoints inside the loop: stop on an alert, pause for review, stop on low agreement."""

from __future__ import annotations

from tests.test_loop import tiny_config

import autodidact
from autodidact.loop import STORE_FILE
from autodidact.records import Rating
from autodidact.review import update_agreement
from autodidact.store import RunStore


def _with(config: dict, **sections) -> dict:
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


class _AlertAtIteration:
    """A monitor that measures a constant and alerts at one iteration: the loop's plumbing, deterministically."""

    name = "fake"

    def __init__(self, at: int, stop: bool) -> None:
        self.at, self.stop = at, stop

    def measure(self, evidence):
        return {"fake_measure": float(evidence.iteration)}

    def alert(self, history, evidence):
        return "seen" if len(history) - 1 == self.at else None


def test_an_alert_whose_monitor_stops_ends_the_run(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setattr("autodidact.loop.build_monitors", lambda config, embedder: [_AlertAtIteration(1, stop=True)])
    result = autodidact.run(tiny_config(tiny_llama, tmp_path, max_iterations=3))
    assert [row["iteration"] for row in result.iterations] == [0, 1]
    assert result.stop_reason == "monitor fake raised an alert (its stop is set): seen"
    assert [(a.iteration, a.monitor, a.stop) for a in result.alerts] == [(1, "fake", True)]
    assert [row["fake_measure"] for row in result.iterations] == [0.0, 1.0]


def test_an_alert_without_stop_is_recorded_and_the_run_goes_on(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setattr("autodidact.loop.build_monitors", lambda config, embedder: [_AlertAtIteration(1, stop=False)])
    result = autodidact.run(tiny_config(tiny_llama, tmp_path, max_iterations=2))
    assert result.stop_reason == "reached max_iterations=2"
    assert [(a.iteration, a.monitor, a.stop) for a in result.alerts] == [(1, "fake", False)]


def test_review_pause_waits_for_ratings_then_resumes(tiny_llama, tmp_path):
    config = _with(
        tiny_config(tiny_llama, tmp_path, max_iterations=2),
        review={"every": 1, "items": 3, "pause": True, "min_ratings": 2},
        monitors={"diversity": {"prompts": 0}},
    )
    paused = autodidact.run(config)
    run_dir = tmp_path / "run"
    assert paused.paused is not None and "autodidact review" in paused.paused
    assert paused.stop_reason is None and [r["iteration"] for r in paused.iterations] == [0, 1]
    with RunStore(run_dir / STORE_FILE) as store:
        items = store.review_items(1)
        assert len(items) == 3 and all(i.kind == "score" for i in items)
        # Still pending: resuming pauses again without redoing anything.
        counts = store.counts()
    assert autodidact.resume(run_dir).paused is not None
    with RunStore(run_dir / STORE_FILE) as store:
        assert store.counts() == counts
        with store.transaction():
            for item in items:  # a person who agrees with the judge's ranking
                store.rate(Rating(item.id, item.judge_score, "tester"))
    finished = autodidact.resume(run_dir)
    # The last iteration queues its checkpoint but does not pause: the run stops there anyway.
    assert finished.paused is None and finished.stop_reason == "reached max_iterations=2"
    with RunStore(run_dir / STORE_FILE) as store:
        assert store.metric(1, "human_ratings") == 3.0
        assert len(store.review_items(2)) == 3 and len(store.review_items(pending=True)) == 3


def test_low_human_agreement_stops_the_run(tiny_llama, tmp_path):
    config = _with(
        tiny_config(tiny_llama, tmp_path, max_iterations=3),
        review={"every": 1, "items": 4, "pause": True, "min_ratings": 3, "min_agreement": 0.5},
        monitors={"diversity": {"prompts": 0}},
    )
    assert autodidact.run(config).paused is not None
    run_dir = tmp_path / "run"
    with RunStore(run_dir / STORE_FILE) as store:
        items = store.review_items(1)
        distinct = sorted({i.judge_score for i in items})
        with store.transaction():  # a person who ranks exactly opposite to the judge
            for item in items:
                store.rate(Rating(item.id, 10.0 - item.judge_score, "tester"))
        agreement = update_agreement(store, 1, 3)["human_agreement"]
    assert len(distinct) == 4  # log-prob scores are expectations over 0-10: distinct, so the ranking is defined
    result = autodidact.resume(run_dir)
    assert agreement == -1.0
    assert "below review.min_agreement 0.5" in result.stop_reason
    assert [(a.iteration, a.monitor, a.stop) for a in result.alerts if a.monitor == "reliability"] == [(1, "reliability", True)]
