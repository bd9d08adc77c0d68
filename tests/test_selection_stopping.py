"""Selection and stopping: pure functions, exact expected values."""

from __future__ import annotations

from autodidact.records import Judgment, Prompt, Sample
from autodidact.selection import select
from autodidact.stopping import best_iteration, stop_reason

PROMPTS = {
    pid: Prompt(id=pid, task="t", split="train", messages=[{"role": "user", "content": pid}]) for pid in ("a", "b")
}


def _sample(pid, k, text):
    return Sample(id=f"{pid}{k}", prompt_id=pid, iteration=1, index=k, text=text, num_tokens=1)


SAMPLES = [_sample("a", 0, "x"), _sample("a", 1, "y"), _sample("a", 2, "y"), _sample("a", 3, ""), _sample("b", 0, "z"), _sample("b", 1, "w")]
SCORES = {"a0": 5.0, "a1": 9.0, "a2": 9.0, "a3": 10.0, "b0": None, "b1": 2.0}
JUDGMENTS = [Judgment(sid, "direct", score) for sid, score in SCORES.items()]


def test_top_k_skips_failed_empty_and_duplicate_samples():
    chosen = select(PROMPTS, SAMPLES, JUDGMENTS, "top_k", top_k=2)
    # a3 is empty, a2 duplicates a1, b0 failed (None): never selected.
    assert [e.sample_id for e in chosen] == ["a1", "a0", "b1"]
    assert chosen[0].completion == "y" and chosen[0].messages == PROMPTS["a"].messages


def test_threshold_and_floor():
    assert [e.sample_id for e in select(PROMPTS, SAMPLES, JUDGMENTS, "threshold", min_score=5.0)] == ["a1", "a0"]
    assert [e.sample_id for e in select(PROMPTS, SAMPLES, JUDGMENTS, "top_k", top_k=1, min_score=3.0)] == ["a1"]


def test_stop_reasons():
    assert stop_reason([0.2], max_iterations=3, patience=2, min_delta=0.01) is None
    assert stop_reason([0.2, 0.3], 3, 2, 0.01) is None
    assert "max_iterations" in stop_reason([0.2, 0.3, 0.4, 0.5], 3, 2, 0.01)
    # +0.005 twice is below min_delta: two stale iterations with patience 2.
    assert "no gain" in stop_reason([0.2, 0.205, 0.21], 5, 2, 0.01)
    assert stop_reason([0.2, 0.205, 0.3], 5, 2, 0.01) is None


def test_best_iteration_is_argmax_earliest_on_ties():
    assert best_iteration([0.2, 0.4, 0.4, 0.1]) == 1
    assert best_iteration([0.5, 0.4]) == 0
    assert best_iteration([None, 0.1]) == 1
