"""The signal-decay monitor on hand-made probe votes: flip rate, kept, right among kept, and the alert's bounds."""

from __future__ import annotations

from autodidact.config import RunConfig, validate_config
from autodidact.engines import Completion
from autodidact.judges.consistency import last_number
from autodidact.monitors import Evidence, SignalDecayMonitor, build_monitors, check
from autodidact.monitors.probes import vote_probe
from autodidact.monitors.signal_decay import (
    Flips,
    Vote,
    decay_alert,
    flip_counts,
    majority_vote,
    signal_metrics,
    vote_tasks,
    votes_from_json,
    votes_to_json,
)
from autodidact.records import Prompt
from autodidact.tasks import get_task

ROUTED = {"method": "direct", "tasks": {"arithmetic": {"method": "self_consistency", "consistency_score": "share"}}}


def test_majority_vote_normalises_answers_and_breaks_ties_by_first_given():
    assert majority_vote("p", ["so 4", "4.0", "5", "no number"], last_number) == Vote("p", "4", 2 / 3, 0)
    assert majority_vote("p", ["it is 5", "4"], last_number) == Vote("p", "5", 0.5, 0)  # a tie: the first answer
    assert majority_vote("p", ["none", "at all"], last_number) == Vote("p", None, 0.0)


# Iteration i-1 and i of a 5-prompt probe: p1 flips right -> wrong, p2 wrong -> right, p3 had no majority before,
# p4 keeps its answer, p5 is new. Kept (share >= 0.5): p1, p2, p3, p5; right among them: p2, p3.
PREVIOUS = [Vote("p1", "4", 1.0, 0, True), Vote("p2", "7", 0.5, 0, False), Vote("p3", None, 0.0),
            Vote("p4", "1", 0.75, 1, True)]
CURRENT = [Vote("p1", "5", 0.75, 0, False), Vote("p2", "8", 0.5, 1, True), Vote("p3", "3", 1.0, 0, True),
           Vote("p4", "1", 0.25, 2, True), Vote("p5", "2", 0.625, 0, False)]


def test_flips_count_prompts_with_a_majority_both_times_and_their_direction():
    flips = flip_counts({v.prompt_id: v for v in PREVIOUS}, {v.prompt_id: v for v in CURRENT})
    assert flips == Flips(shared=3, flipped=2, right_to_wrong=1, wrong_to_right=1)
    assert flips.rate == 2 / 3
    assert Flips(0, 0, 0, 0).rate is None


def test_signal_metrics_on_hand_made_votes_are_exact():
    assert signal_metrics(PREVIOUS, CURRENT, min_share=0.5) == {
        "vote_flip_rate": 2 / 3, "vote_kept": 4 / 5, "vote_right_kept": 2 / 4,
    }
    # A higher floor keeps p1 (0.75) and p3 (1.0); iteration 0 has no previous votes, so no flip rate.
    assert signal_metrics([], CURRENT, min_share=0.75) == {"vote_flip_rate": None, "vote_kept": 2 / 5, "vote_right_kept": 1 / 2}
    assert signal_metrics(PREVIOUS, [], 0.5) == {}


def test_decay_alert_fires_just_past_each_bound_and_not_at_it():
    def history(rate, right_kept):
        return [{"vote_right_kept": 1.0}, {"vote_flip_rate": rate, "vote_right_kept": right_kept}]

    assert decay_alert(history(0.5, 0.75), max_flip_rate=0.5, max_drop=0.25) is None  # both exactly at the bound
    flipped = decay_alert(history(0.625, 0.75), max_flip_rate=0.5, max_drop=0.25)
    assert flipped is not None and "62% of the probe prompts' majority answers changed" in flipped
    assert "fell" not in flipped
    dropped = decay_alert(history(0.5, 0.5), max_flip_rate=0.5, max_drop=0.25)
    assert dropped is not None and "from 100% at iteration 0 to 50% (-50%" in dropped and "changed" not in dropped
    assert decay_alert(history(0.5, 0.5)[:1], 0.5, 0.25) is None  # iteration 0 alone
    assert decay_alert([{"vote_right_kept": 0.0}, {"vote_right_kept": 0.0}], 0.5, 0.25) is None  # nothing to fall from


def test_the_monitor_measures_then_alerts_through_check():
    monitor = SignalDecayMonitor(min_share=0.5, max_flip_rate=0.5, max_drop=0.25, stop=True)
    evidence = Evidence(1, [{"vote_right_kept": 1.0}, {}], votes=CURRENT, previous_votes=PREVIOUS)
    metrics, alerts = check([monitor], evidence)
    assert metrics == {"vote_flip_rate": 2 / 3, "vote_kept": 4 / 5, "vote_right_kept": 1 / 2}
    [alert] = alerts
    assert (alert.iteration, alert.monitor, alert.stop) == (1, "signal_decay", True)
    assert "67% of the probe prompts" in alert.message and "from 100% at iteration 0 to 50%" in alert.message


def test_the_monitor_is_built_only_for_a_run_with_a_self_consistency_task_and_a_probe():
    routed = validate_config({"judge": ROUTED})
    assert vote_tasks(routed) == {"arithmetic": "last_number"}
    assert "signal_decay" in [m.name for m in build_monitors(routed, None)]
    assert "signal_decay" not in [m.name for m in build_monitors(RunConfig(), None)]  # the direct judge: no votes
    off = validate_config({"judge": ROUTED, "monitors": {"signal_decay": {"prompts": 0}}})
    assert "signal_decay" not in [m.name for m in build_monitors(off, None)]
    whole = validate_config({"judge": {"method": "self_consistency", "extractor": "boxed"}})
    assert vote_tasks(whole) == {"arithmetic": "boxed", "instructions": "boxed"}


def test_votes_survive_the_store_between_iterations():
    assert votes_from_json(votes_to_json(CURRENT)) == CURRENT
    assert votes_from_json(None) == []


class _FixedAnswers:
    """Answers each prompt with the texts listed for it (by its last message), and records the sampling."""

    def __init__(self, texts: dict[str, list[str]]) -> None:
        self.texts, self.calls = texts, []

    def render(self, messages) -> str:
        return messages[-1]["content"]

    def generate(self, prompts, params, desc=""):
        self.calls.append((list(prompts), params))
        return [[Completion(t, 1) for t in self.texts[p]] for p in prompts]


def test_the_vote_probe_samples_the_first_heldout_prompts_of_each_voting_task_and_grades_the_majority():
    def heldout(i, task, reference=None):
        return Prompt(f"{task}-{i}", task, "heldout", [{"role": "user", "content": f"{task} {i}"}], reference)

    prompts = [heldout(0, "arithmetic", "4"), heldout(0, "instructions"), heldout(1, "arithmetic", "9"),
               heldout(2, "arithmetic", "1")]
    engine = _FixedAnswers({"arithmetic 0": ["4", "4", "5", "x"], "arithmetic 1": ["8", "it is 8", "9", "9"]})
    config = validate_config({"judge": ROUTED, "monitors": {"signal_decay": {"prompts": 2, "samples": 4}}})
    tasks = {"arithmetic": get_task("arithmetic")}

    votes = vote_probe(engine, prompts, tasks, vote_tasks(config), config.monitors.signal_decay, config.generation,
                       seed=3, desc="probe")

    assert votes == [Vote("arithmetic-0", "4", 2 / 3, 0, True), Vote("arithmetic-1", "8", 0.5, 0, False)]
    [(rendered, params)] = engine.calls
    assert rendered == ["arithmetic 0", "arithmetic 1"] and params.n == 4 and params.temperature == 0.8
    assert params.seed == 3 + 104_729  # the same seed every iteration
