"""Selection and stopping: pure functions, exact expected values."""

from __future__ import annotations

from autodidact.records import Judgment, PreferencePair, Prompt, Sample
from autodidact.selection import select, select_pairs
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


# --- preference pairs (DPO) ------------------------------------------------------

def _scored(pid: str, scores: list[float | None], texts: list[str] | None = None):
    texts = texts or [f"{pid} answer {k}" for k in range(len(scores))]
    samples = [_sample(pid, k, text) for k, text in enumerate(texts)]
    return samples, [Judgment(s.id, "direct", score) for s, score in zip(samples, scores)]


def test_pairs_are_best_vs_worst_among_valid_distinct_samples():
    pairs = select_pairs(PROMPTS, SAMPLES, JUDGMENTS)
    # a: a3 is empty and a2 duplicates a1, so a1 (9) is chosen over a0 (5);
    # b: b0 failed (None), leaving one valid sample: no pair.
    assert pairs == [
        PreferencePair("a", PROMPTS["a"].messages, "y", "x", "a1", "a0", 9.0, 5.0)
    ]


def test_pairs_take_the_extremes_and_break_ties_by_generation_order():
    samples, judgments = _scored("a", [4.0, 8.0, 6.0, 2.0, 8.0, 2.0])
    (pair,) = select_pairs(PROMPTS, samples, judgments)
    # best 8.0: a1 before a4; worst 2.0: a5 after a3.
    assert (pair.chosen_sample_id, pair.rejected_sample_id) == ("a1", "a5")
    assert (pair.chosen, pair.rejected) == ("a answer 1", "a answer 5")
    assert pair.margin == 6.0
    assert select_pairs(PROMPTS, samples, judgments) == [pair]  # deterministic


def test_ties_and_small_margins_make_no_pair():
    tie, tie_judgments = _scored("a", [7.0, 7.0, 7.0])
    assert select_pairs(PROMPTS, tie, tie_judgments) == []
    gap, gap_judgments = _scored("b", [3.0, 7.0])
    assert len(select_pairs(PROMPTS, gap, gap_judgments, min_margin=4.0)) == 1  # at the margin: kept
    assert select_pairs(PROMPTS, gap, gap_judgments, min_margin=4.5) == []


def test_failed_judgments_and_unjudged_samples_are_never_paired():
    samples, judgments = _scored("a", [None, 3.0, None])
    extra = _sample("a", 9, "never judged")
    assert select_pairs(PROMPTS, samples + [extra], judgments) == []  # one valid score: no pair
    samples, judgments = _scored("a", [None, 3.0, 6.0, None])
    (pair,) = select_pairs(PROMPTS, samples + [extra], judgments)
    assert (pair.chosen_sample_id, pair.rejected_sample_id) == ("a2", "a1")
