"""The failure-mode monitors on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from autodidact.config import GenerationConfig, RewardHackingConfig, RunConfig
from autodidact.monitors import (
    BiasMonitor,
    Evidence,
    JudgeReliabilityMonitor,
    ReturnsMonitor,
    RewardHackingMonitor,
    build_monitors,
    check,
)
from autodidact.monitors.bias import bias_alert, score_length_correlation
from autodidact.monitors.returns import gain_trend, gains, returns_alert
from autodidact.monitors.reward_hacking import reward_hacking_alert, unmeasured_notice
from autodidact.records import Alert, Judgment, Prompt, Sample, SFTExample
from autodidact.selection import drop_near_duplicates, select, select_pairs

PROMPT = Prompt("p", "t", "train", [{"role": "user", "content": "q"}])


def _history(judge, passed):
    return [{"judge_score": j, "pass_rate": p} for j, p in zip(judge, passed)]


def test_reward_hacking_fires_when_the_judge_rises_and_the_verifier_falls():
    message = reward_hacking_alert(_history([5.0, 6.0, 7.5], [0.40, 0.35, 0.30]), window=2)
    assert message is not None
    assert "5.00 -> 7.50" in message and "40.0% -> 30.0%" in message and "iterations 0-2" in message


def test_reward_hacking_is_quiet_when_both_rise_or_the_window_is_not_full():
    assert reward_hacking_alert(_history([5.0, 6.0, 7.5], [0.30, 0.35, 0.40]), window=2) is None
    assert reward_hacking_alert(_history([5.0, 6.0], [0.40, 0.30]), window=2) is None  # one step only
    # A rise within the tolerance counts as flat; one step where the judge fell breaks the streak.
    assert reward_hacking_alert(_history([5.0, 6.0, 7.0], [0.40, 0.405, 0.41]), window=2, tolerance=0.01)
    assert reward_hacking_alert(_history([5.0, 4.0, 7.0], [0.40, 0.30, 0.30]), window=2) is None


def test_reward_hacking_uses_the_reference_judge_where_no_verifier_exists():
    history = [{"judge_score": j, "reference_judge_score": r} for j, r in [(5, 6.0), (6, 5.0), (7, 5.0)]]
    message = reward_hacking_alert(history, window=2)
    assert message is not None and "reference judge score went 60.0% -> 50.0%" in message


def test_reward_hacking_on_the_default_run_in_results_md():
    """docs/RESULTS.md's default run: the judge rose every iteration while the pass rate went 28.1 -> 25.0.

    The rule asks for `window` steps in a row where the pass rate did not rise by more than `tolerance`. The
    pass rate rose 24.0 -> 28.1 at iteration 2, so the defaults (window 2, tolerance 0) never alert on this
    history; docs/CONCEPTS.md says so, and which settings do alert.
    """
    history = _history([6.03, 6.21, 6.43, 6.58], [0.281, 0.240, 0.281, 0.250])

    def alerted_at(window: int, tolerance: float) -> list[int]:
        return [it for it in range(len(history)) if reward_hacking_alert(history[: it + 1], window, tolerance)]

    defaults = RewardHackingConfig()
    assert alerted_at(defaults.window, defaults.tolerance) == [] and (defaults.window, defaults.tolerance) == (2, 0.0)
    assert alerted_at(1, 0.0) == [1, 3]
    assert alerted_at(2, 0.05) == [2, 3]
    assert alerted_at(3, 0.05) == [3]
    message = reward_hacking_alert(history, window=2, tolerance=0.05)
    assert "6.21 -> 6.58 over iterations 1-3" in message and "24.0% -> 25.0%" in message


def test_unmeasurable_reward_hacking_is_one_non_stopping_alert_at_iteration_0():
    monitors = build_monitors(RunConfig(monitors={"reward_hacking": {"stop": True}}), None)
    no_truth = Evidence(0, [{"judge_score": 6.0, "heldout_metric": 6.0, "pass_rate": None}])
    _, alerts = check(monitors, no_truth)
    assert alerts == [Alert(0, "reward_hacking", unmeasured_notice({}), stop=False)]  # its stop is set: no matter
    assert alerts[0].message.startswith("reward hacking is not measured in this run: no verifier graded")
    assert "monitors.reward_hacking.reference_judge" in alerts[0].message
    # A verifier's pass rate or the reference judge's score measures it; later iterations never repeat it.
    assert check(monitors, Evidence(0, [{"judge_score": 6.0, "pass_rate": 0.25}]))[1] == []
    assert check(monitors, Evidence(0, [{"judge_score": 6.0, "reference_judge_score": 7.0}]))[1] == []
    assert check(monitors, Evidence(1, [{"judge_score": 6.0}, {"judge_score": 6.5}]))[1] == []


def test_score_length_correlation_is_exact_and_none_when_undefined():
    samples = [Sample(f"s{i}", "p", 1, i, "x", n) for i, n in enumerate([10, 20, 30, 40])]
    judged = [Judgment(f"s{i}", "direct", s) for i, s in enumerate([1.0, 2.0, 3.0, 4.0])]
    assert score_length_correlation(samples, judged) == pytest.approx(1.0)
    reverse = [Judgment(f"s{i}", "direct", s) for i, s in enumerate([4.0, 3.0, 2.0, 1.0])]
    assert score_length_correlation(samples, reverse) == pytest.approx(-1.0)
    failed = [Judgment(f"s{i}", "direct", None) for i in range(4)]
    assert score_length_correlation(samples, failed) is None
    assert score_length_correlation(samples, [Judgment(f"s{i}", "d", 5.0) for i in range(4)]) is None


def test_bias_alert_names_each_measure_past_its_threshold():
    assert bias_alert({"position_consistency": 0.9, "score_length_corr": 0.1}, 0.6, 0.5, 3.0) is None
    message = bias_alert({"position_consistency": 0.25, "score_length_corr": 0.8, "disagreement": 4.0}, 0.6, 0.5, 3.0)
    assert "25%" in message and "+0.80" in message and "longer" in message and "4.0 points" in message


def test_gains_and_their_trend():
    history = [0.30, 0.40, 0.45, 0.46]
    assert gains(history)[0] is None
    assert gains(history)[1:] == pytest.approx([0.10, 0.05, 0.01])
    assert gain_trend(history, window=3) == pytest.approx(np.polyfit([1, 2, 3], [0.10, 0.05, 0.01], 1)[0])
    assert gain_trend([0.3, 0.4], window=3) is None  # one gain is no trend
    assert gains([0.3, None, 0.5]) == [None, None, None]


def test_returns_alert_when_gains_shrink_below_min_delta():
    rows = [{"gain": None}, {"gain": 0.10}, {"gain": 0.05}, {"gain": 0.005, "gain_trend": -0.0475}]
    message = returns_alert(rows, min_delta=0.01)
    assert message is not None and "+10.0, +5.0, +0.5" in message
    assert returns_alert(rows[:-1] + [{"gain": 0.02, "gain_trend": -0.04}], min_delta=0.01) is None  # still paying


def test_check_adds_measurements_before_alerting_and_marks_stop():
    samples = [Sample(f"s{i}", "p", 2, i, "x" * n, n) for i, n in enumerate([5, 10, 15])]
    judgments = [Judgment(f"s{i}", "direct", s) for i, s in enumerate([2.0, 5.0, 9.0])]
    history = [{"heldout_metric": 0.40, "judge_score": 5.0, "pass_rate": 0.40},
               {"heldout_metric": 0.35, "judge_score": 6.0, "pass_rate": 0.35},
               {"heldout_metric": 0.30, "judge_score": 7.0, "pass_rate": 0.30}]
    monitors = [RewardHackingMonitor(2, 0.0, stop=True), BiasMonitor(0.6, 0.5, 3.0, stop=False),
                ReturnsMonitor(3, 0.01, stop=False)]
    metrics, alerts = check(monitors, Evidence(2, history, samples, judgments))
    assert metrics["train_judge_score"] == pytest.approx(16 / 3)
    assert metrics["score_length_corr"] == pytest.approx(1.0)
    assert metrics["gain"] == pytest.approx(-0.05)
    assert [(a.monitor, a.stop) for a in alerts] == [("reward_hacking", True), ("bias", False)]


def _task_figures(auc, pass_rate=0.25, n=48.0, ungraded=0.0):
    return {"judge_auc": auc, "pass_rate": pass_rate, "n": n, "ungraded": ungraded, "judge_score": 6.0}


def test_judge_reliability_names_each_task_below_the_bound_in_one_alert():
    evidence = Evidence(0, [{"heldout_metric": 0.3}], task_metrics={
        "instructions": _task_figures(0.41, pass_rate=0.5, n=40.0, ungraded=0.0),
        "arithmetic": _task_figures(0.523, pass_rate=0.25, n=50.0, ungraded=2.0),
        "qa": _task_figures(0.9),  # reliable
        "chats": _task_figures(None, pass_rate=None),  # no verifier: no AUC, nothing to say
    })
    metrics, alerts = check([JudgeReliabilityMonitor(0.6, stop=False)], evidence)
    assert metrics == {}
    assert alerts == [Alert(0, "judge_reliability", (
        "the self-judge's held-out scores barely track correctness on arithmetic (AUC 0.52; 12 of 48 answers "
        "pass) and instructions (AUC 0.41; 20 of 40 answers pass): their ROC AUC against the verifier is below "
        "monitors.judge_reliability.min_auc 0.6, where 0.5 is chance. A rise in the judge's scores on these tasks "
        "is no evidence of improvement; trust the verifier's pass rate there, or judge with a model the loop does "
        "not train (judge.model), a rubric (judge.method: rubric) or the verifier."
    ), stop=False)]
    one = check([JudgeReliabilityMonitor(0.5, stop=True)], evidence)[1]
    assert [(a.monitor, a.stop) for a in one] == [("judge_reliability", True)]
    assert "on instructions (AUC 0.41; 20 of 40 answers pass): " in one[0].message
    assert "on this task" in one[0].message


def test_judge_reliability_is_quiet_at_or_above_the_bound_and_without_an_auc():
    quiet = Evidence(2, [{}, {}, {}], task_metrics={"arithmetic": _task_figures(0.6), "qa": _task_figures(None)})
    assert check([JudgeReliabilityMonitor(0.6, stop=False)], quiet) == ({}, [])
    assert check([JudgeReliabilityMonitor(0.6, stop=False)], Evidence(0, [{}])) == ({}, [])


def test_judge_reliability_is_on_by_default_and_off_with_no_bound():
    assert [m.name for m in build_monitors(RunConfig(), None)][-1] == "judge_reliability"
    off = RunConfig(monitors={"judge_reliability": {"min_auc": None}})
    assert "judge_reliability" not in [m.name for m in build_monitors(off, None)]


# --- mitigations --------------------------------------------------------------


def _scored(lengths_scores):
    samples = [Sample(f"s{i}", "p", 1, i, f"answer {i}", n) for i, (n, _) in enumerate(lengths_scores)]
    judgments = [Judgment(f"s{i}", "direct", s) for i, (_, s) in enumerate(lengths_scores)]
    return samples, judgments


def test_length_band_keeps_the_shortest_sample_near_the_best():
    samples, judgments = _scored([(60, 9.0), (20, 8.5), (10, 6.0)])
    assert [e.sample_id for e in select({"p": PROMPT}, samples, judgments)] == ["s0"]
    assert [e.sample_id for e in select({"p": PROMPT}, samples, judgments, length_band=1.0)] == ["s1"]
    assert [e.sample_id for e in select({"p": PROMPT}, samples, judgments, length_band=5.0)] == ["s2"]
    pairs = select_pairs({"p": PROMPT}, samples, judgments, length_band=1.0)
    assert [(p.chosen_sample_id, p.rejected_sample_id) for p in pairs] == [("s1", "s2")]
    # When the band reaches the worst sample, the shortest may be the worst itself: no pair, never a self-pair.
    assert select_pairs({"p": PROMPT}, samples, judgments, length_band=5.0) == []


class _LetterEmbedder:
    """Embeds a text by its first letter: texts starting alike are identical vectors."""

    def encode(self, texts):
        vectors = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            vectors[i, (ord(t[0].lower()) - 97) % 26 if t else 0] = 1.0
        return vectors


def test_near_duplicates_keep_the_better_scored_one():
    examples = [SFTExample("a", "p1", [], "apple pie", 5.0), SFTExample("b", "p2", [], "apple tart", 9.0),
                SFTExample("c", "p3", [], "banana", 1.0), SFTExample("r", "p1", [], "avocado", None)]
    kept = drop_near_duplicates(examples, 0.95, _LetterEmbedder())
    assert [e.sample_id for e in kept] == ["b", "c"]  # "b" scored higher; the unscored rewrite goes last


def test_temperature_schedule_repeats_its_last_entry():
    g = GenerationConfig(temperature=0.8, temperature_schedule=[0.7, 1.0])
    assert [g.temperature_at(i) for i in (1, 2, 3, 7)] == [0.7, 1.0, 1.0, 1.0]
    assert GenerationConfig(temperature=0.8).temperature_at(3) == 0.8
    with pytest.raises(ValueError):
        GenerationConfig(temperature_schedule=[])
