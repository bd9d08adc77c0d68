"""Held-out evaluation: judge AUC against the verifier (exact values), and the held-out judge of relative judges."""

from __future__ import annotations

import pytest

from autodidact.config import judge_config
from autodidact.evaluation import heldout_judge, heldout_metrics, paraphrase_metrics, roc_auc, wilson_interval
from autodidact.judges import build_judge
from autodidact.judges.direct import DirectScoreJudge
from autodidact.records import Judgment, Prompt, Sample


def test_auc_counts_ties_half_and_leaves_out_missing_scores_and_verdicts():
    # Valid (score, verdict): (9, pass) (7, pass) (7, fail) (3, fail); the last two answers are left out.
    # Pass-vs-fail pairs: 9>7, 9>3, 7=7 (half), 7>3 -> 3.5 of 4.
    assert roc_auc([9.0, 7.0, 7.0, 3.0, None, 5.0], [1.0, 1.0, 0.0, 0.0, 1.0, None]) == 0.875
    assert roc_auc([1.0, 2.0], [1.0, 0.0]) == 0.0  # every pass below every fail
    assert roc_auc([4.0, 4.0, 4.0], [1.0, 0.0, 1.0]) == 0.5  # a constant judge is chance
    assert roc_auc([2.0, 8.0, 5.0], [0.0, 1.0, 1.0]) == 1.0


@pytest.mark.parametrize(
    ("scores", "verdicts"),
    [
        ([5.0, 6.0], [1.0, 1.0]),
        ([5.0, 6.0], [0.0, 0.0]),
        ([None, None], [1.0, 0.0]),
        ([5.0, 6.0], [None, 0.0]),
        ([], []),
    ],
)
def test_auc_is_none_without_both_classes(scores, verdicts):
    assert roc_auc(scores, verdicts) is None


def test_heldout_metrics_report_auc_per_task_and_over_all_answers():
    ids = [f"{task}{i}" for task in "ab" for i in range(3)]
    prompts = {pid: Prompt(pid, pid[0], "heldout", [{"role": "user", "content": "q"}]) for pid in ids}
    samples = [Sample(f"s-{pid}", pid, 1, 0, "x", 2) for pid in prompts]
    # task a: pass 8, pass 6, fail 6 -> (1 + 0.5) / 2 = 0.75; task b: pass 2, fail 9, fail (no score) -> 0.0.
    verdicts = {"s-a0": 1.0, "s-a1": 1.0, "s-a2": 0.0, "s-b0": 1.0, "s-b1": 0.0, "s-b2": 0.0}
    scores = {"s-a0": 8.0, "s-a1": 6.0, "s-a2": 6.0, "s-b0": 2.0, "s-b1": 9.0, "s-b2": None}
    judgments = [Judgment(sid, "direct", score) for sid, score in scores.items()]
    metrics = heldout_metrics(prompts, samples, verdicts, judgments)
    assert metrics["a"]["judge_auc"] == 0.75
    assert metrics["b"]["judge_auc"] == 0.0
    # All answers: passes 8, 6, 2 vs fails 6, 9: 8>6, 6=6 (half), 2<6; 8<9, 6<9, 2<9 -> 1.5 of 6.
    assert metrics[""]["judge_auc"] == 0.25
    assert heldout_metrics(prompts, samples, verdicts, [])[""]["judge_auc"] is None  # no held-out judge


def test_paraphrase_metrics_are_the_verifier_figures_renamed():
    ids = ["a0", "a1", "a2", "a3", "b0", "b1"]
    prompts = {pid: Prompt(pid, pid[0], "heldout_paraphrase", [{"role": "user", "content": "q"}]) for pid in ids}
    samples = [Sample(f"s-{pid}", pid, 2, 0, "x", 3) for pid in prompts]
    verdicts = {"s-a0": 1.0, "s-a1": 0.0, "s-a2": 1.0, "s-a3": None, "s-b0": 0.0, "s-b1": 0.0}
    metrics = paraphrase_metrics(heldout_metrics(prompts, samples, verdicts, []))
    low, high = wilson_interval(2, 3)
    assert metrics["a"] == {"paraphrase_pass_rate": 2 / 3, "paraphrase_pass_low": low, "paraphrase_pass_high": high,
                            "paraphrase_n": 4.0, "paraphrase_ungraded": 1.0}
    assert metrics["b"]["paraphrase_pass_rate"] == 0.0
    # Over all tasks: only the mean pass rate; never `heldout_metric`, which early stopping reads.
    assert metrics[""] == {"paraphrase_pass_rate": pytest.approx((2 / 3 + 0.0) / 2)}


class NoEngine:
    supports_logprobs = True


@pytest.mark.parametrize(
    ("judge", "relative"),
    [
        ({"method": "direct"}, False),
        ({"method": "rubric"}, False),
        ({"method": "ensemble", "members": [{"method": "direct"}, {"method": "rubric"}]}, False),
        ({"method": "pairwise"}, True),
        ({"method": "contrastive"}, True),
        ({"method": "self_consistency"}, True),
        ({"method": "ensemble", "members": [{"method": "direct"}, {"method": "pairwise"}]}, True),
    ],
)
def test_relative_judges_are_replaced_by_a_direct_judge_on_the_same_engine(judge, relative):
    config = judge_config(**judge, mode="generate", batch_size=3, min_score_mass=0.01)
    engine = NoEngine()
    training_judge = build_judge(config, engine, {})
    chosen = heldout_judge(training_judge, config, engine)
    if not relative:
        assert chosen is training_judge
        return
    assert isinstance(chosen, DirectScoreJudge)
    assert (chosen.engine, chosen.mode, chosen.batch_size, chosen.min_mass) == (engine, "generate", 3, 0.01)
