"""Monitors, mitigations and human checkpoints inside the loop: stop on an alert, pause for review, stop on
low agreement, say when reward hacking goes unmeasured, and length band, near-duplicate removal and the
temperature schedule acting on a run."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from unittest.mock import ANY

import numpy as np
from rich.console import Console
from tests.loop.test_loop import tiny_config
from tests.test_tracking import _events

import autodidact
import autodidact.engines.serving
import autodidact.loop
from autodidact.apps.summary import alerts_table
from autodidact.engines import Completion
from autodidact.loop import STORE_FILE
from autodidact.monitors.reward_hacking import unmeasured_notice
from autodidact.records import Alert, Rating
from autodidact.review import update_agreement
from autodidact.store import RunStore
from autodidact.tasks import get_task


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


def _monitored_by(monitor):
    """Amend a run's context: `monitor` is its only monitor."""
    return lambda ctx: replace(ctx, monitors=[monitor])


def test_an_alert_whose_monitor_stops_ends_the_run(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=3)
    result = autodidact.loop.run(config, amend=_monitored_by(_AlertAtIteration(1, stop=True)))
    assert [row["iteration"] for row in result.iterations] == [0, 1]
    assert result.stop_reason == "monitor fake raised an alert (its stop is set): seen"
    assert [(a.iteration, a.monitor, a.stop) for a in result.alerts] == [(1, "fake", True)]
    assert [row["fake_measure"] for row in result.iterations] == [0.0, 1.0]


def test_an_alert_without_stop_is_recorded_and_the_run_goes_on(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=2)
    result = autodidact.loop.run(config, amend=_monitored_by(_AlertAtIteration(1, stop=False)))
    assert result.stop_reason == "reached max_iterations=2"
    assert [(a.iteration, a.monitor, a.stop) for a in result.alerts] == [(1, "fake", False)]


def test_review_pause_waits_for_ratings_then_resumes(tiny_llama, tmp_path):
    config = _with(
        tiny_config(tiny_llama, tmp_path, max_iterations=2),
        review={"every": 1, "items": 3, "pause": True, "min_ratings": 2},
        monitors={"diversity": {"prompts": 0}},
    ) | {"tracking": "tensorboard"}
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
    # Iteration 1 went to the tracker before its ratings existed; the resumed run's review gate sent them.
    events = _events(run_dir / "tracking")
    assert [(e.step, e.value) for e in events.Scalars("review/human_ratings")] == [(1, 3.0)]
    assert [(e.step, e.value) for e in events.Scalars("review/human_agreement")] == [(1, 1.0)]


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


def test_a_run_without_verifier_or_reference_judge_says_once_that_reward_hacking_is_unmeasured(
    tiny_llama, tmp_path, caplog
):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=1)
    logs = Path(__file__).parents[1] / "data" / "sources" / "logs.jsonl"  # logged chats: no reference, no verifier
    config["tasks"] = {
        "names": [], "sources": [{"type": "logs", "path": str(logs), "heldout_ratio": 0.4}], "min_heldout": 2,
    }
    config["monitors"] = {"diversity": {"prompts": 0}}
    with caplog.at_level(logging.WARNING, logger="autodidact.loop"):
        result = autodidact.run(config)
    notice = unmeasured_notice({})
    assert result.stop_reason == "reached max_iterations=1"  # the notice never stops a run
    assert [a for a in result.alerts if a.monitor == "reward_hacking"] == [Alert(0, "reward_hacking", notice)]
    assert [r.getMessage() for r in caplog.records if "reward hacking is not measured" in r.getMessage()] == [
        f"iteration 0: reward_hacking alert: {notice}"
    ]
    console = Console(record=True, width=400)
    console.print(alerts_table(result.alerts))  # the end-of-run summary's alert list
    assert "reward hacking is not measured in this run" in console.export_text()


# --- mitigations acting on a run ----------------------------------------------------------------------

_SCORE_TAG = re.compile(r"\[s(\d+)\]")


class MitigationEngine:
    """Stands in for the policy's engine: answers of known score and length, and a record of the temperatures.

    A "[sN]" tag in a response makes the judge give it exactly N. Each training prompt gets sample 0 "[s9]" of
    30 tokens, sample 1 "[s8]" (or "[s7]") of 20 and sample 2 "[s5]" of 10. Sample 1 of the two `twins` prompts
    says the same words (the second scored 7); of the third, words of its own. Held-out answers are "[s5] 0".
    """

    supports_logprobs = True
    twins: tuple[str, str] = ("", "")  # rendered prompts
    temperatures: dict[int, float] = {}  # sampling seed (seed * 1000 + iteration) -> temperature

    def __init__(self, *args, **kwargs):
        pass

    def render(self, messages):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def generate(self, prompts, params, desc=""):
        if params.n == 1:  # greedy held-out answers
            return [[Completion("[s5] 0", 2)] for _ in prompts]
        MitigationEngine.temperatures[params.seed] = params.temperature
        return [self._samples(prompt) for prompt in prompts]

    def _samples(self, prompt: str) -> list[Completion]:
        middle = {self.twins[0]: "[s8] the twin answer", self.twins[1]: "[s7] the twin answer"}.get(
            prompt, f"[s8] an answer of its own to {prompt}"
        )
        return [Completion("[s9] a long answer", 30), Completion(middle, 20), Completion("[s5] short", 10)]

    def continuation_logprobs(self, prompts, continuations, desc=""):
        # The direct judge asks for the labels "0".."10": all the probability on the response's tag.
        tags = [int(_SCORE_TAG.search(prompt).group(1)) for prompt in prompts]
        return [[0.0 if label == tag else -1e4 for label in range(len(continuations))] for tag in tags]


class TagBlindEmbedder:
    """Texts equal but for their "[sN]" tag embed identically, all others orthogonally: near-duplicates."""

    def __init__(self) -> None:
        self.axes: dict[str, int] = {}

    def encode(self, texts):
        words = [_SCORE_TAG.sub("", text).strip() for text in texts]
        for text in words:
            self.axes.setdefault(text, len(self.axes))
        vectors = np.zeros((len(texts), len(self.axes)), dtype=np.float32)
        for i, text in enumerate(words):
            vectors[i, self.axes[text]] = 1.0
        return vectors


def test_length_band_dedup_and_temperature_schedule_act_inside_a_run(tiny_llama, tmp_path, monkeypatch):
    config = _with(
        tiny_config(tiny_llama, tmp_path, max_iterations=2),
        tasks={"names": ["arithmetic"], "train_size": 3, "heldout_size": 2, "prompts_per_iteration": 3,
               "min_heldout": 2},
        generation={"samples_per_prompt": 3, "temperature_schedule": [0.3, 1.1]},
        selection={"length_band": 2.5, "dedup_similarity": 0.95},
        monitors={"diversity": {"prompts": 0}},
    )
    train = sorted(get_task("arithmetic").build(3, 2, seed=0)[0], key=lambda p: p.id)  # every iteration draws all 3
    rendered = [MitigationEngine.render(None, p.messages) for p in train]
    monkeypatch.setattr(autodidact.engines.serving, "TransformersEngine", MitigationEngine)
    monkeypatch.setattr(MitigationEngine, "twins", (rendered[0], rendered[1]))
    monkeypatch.setattr(MitigationEngine, "temperatures", {})
    monkeypatch.setattr("autodidact.embeddings.load_embedder", lambda spec: TagBlindEmbedder())
    autodidact.run(config)

    # The schedule's temperature for iterations 1 and 2 (seed 0: the sampling seed is the iteration).
    assert MitigationEngine.temperatures == {1: 0.3, 2: 1.1}
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert sorted(p.id for p in store.prompts(split="train")) == [p.id for p in train]
        for it in (1, 2):
            # Sample 1 everywhere: within 2.5 points of the best (9) and shorter than it; sample 2 is outside
            # the band. The second twin (7) repeats the first (8) and is dropped.
            kept = {(e.sample_id, e.completion, e.score) for e in store.selection(it)}
            assert kept == {
                (f"it{it}-{train[0].id}-1", "[s8] the twin answer", 8.0),
                (f"it{it}-{train[2].id}-1", f"[s8] an answer of its own to {rendered[2]}", 8.0),
            }
            assert store.stage_info(it, "select") == {"near_duplicates": 1, "kept": 2, "peak_rss_mib": ANY}
