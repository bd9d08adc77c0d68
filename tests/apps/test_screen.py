"""`autodidact screen`: exact metrics on a hand-made case, the pass counter, the cache, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import autodidact

from autodidact.apps import screen as screen_module
from autodidact.apps.screen import SAMPLES_FILE, screen
from autodidact.apps.screen_metrics import PassCounter, ceiling, signal_metrics
from autodidact.apps.screen_signals import SIGNALS, section_methods, signal_names
from autodidact.config import load_config
from autodidact.engines import SamplingParams
from autodidact.errors import AutodidactError
from autodidact.records import Sample

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"

# prompt -> (sample, text, signal score, verdict), in generation order.
CASE = {
    "p1": [("a", "x", 9.0, 1.0), ("b", "y", 9.0, 0.0), ("c", "z", 2.0, 0.0), ("d", "  ", None, 0.0)],
    "p2": [("e", "x", None, 0.0), ("f", "y", 3.0, 1.0), ("g", "z", 5.0, 0.0), ("h", "z", 8.0, 0.0)],
    "p3": [("i", "x", None, 0.0), ("j", "y", None, None)],
}


def case_samples() -> tuple[list[Sample], dict, dict]:
    samples = [
        Sample(sid, pid, 0, k, text, 1) for pid, rows in CASE.items() for k, (sid, text, _, _) in enumerate(rows)
    ]
    scores = {sid: score for rows in CASE.values() for sid, _, score, _ in rows}
    verdicts = {sid: verdict for rows in CASE.values() for sid, _, _, verdict in rows}
    return samples, scores, verdicts


def test_metrics_are_exact_with_ties_repeats_empty_answers_and_failed_judgments():
    samples, scores, verdicts = case_samples()
    m = signal_metrics(samples, scores, verdicts, passes=20, seconds=1.5)
    # Scored and graded: passes {a 9, f 3} vs fails {b 9, c 2, g 5, h 8}: a wins 3 and ties 1, f wins 1 -> 4.5 / 8.
    assert m.auc == 4.5 / 8
    # Within prompts: p1 a vs b tie, a beats c -> 0.75; p2 f loses to g and h -> 0; p3 has no scored pair.
    assert m.within_auc == (0.75 + 0.0) / 2
    # p1: a and b tie at 9, a comes first and passes; p2: h repeats g's text, so g (5) beats f (3) and fails.
    assert m.top1 == 0.5
    # p1's valid pool a, b, c (d is empty): 1/3; p2's e, f, g (h repeats g): 1/3; p3 has no pick, so is left out.
    assert m.random_top1 == pytest.approx(1 / 3, abs=1e-12)
    assert (m.covered, m.prompts, m.coverage) == (2, 3, 2 / 3)
    assert (m.failed, m.samples) == (4, 10)  # d, e, i, j
    assert (m.passes_per_sample, m.seconds) == (2.0, 1.5)


def test_a_signal_that_scores_nothing_has_no_pick_and_no_auc():
    samples, _, verdicts = case_samples()
    m = signal_metrics(samples, {}, verdicts)
    assert (m.auc, m.top1, m.random_top1, m.covered, m.failed, m.passes_per_sample) == (None, None, None, 0, 10, 0.0)
    assert m.within_auc is None


def test_ceiling_counts_ungraded_answers_as_not_passing():
    samples, _, verdicts = case_samples()
    c = ceiling(samples, verdicts)
    assert (c.prompts, c.any_pass, c.sample_pass_rate) == (3, 2 / 3, 0.2)  # p3 has none; a and f of 10 pass


class ExtraCapability:
    """An engine with a capability the counter does not know by name."""

    supports_logprobs = True

    def token_stats(self, prompts, responses):
        return [[0.0] for _ in prompts]


def test_pass_counter_counts_rows_through_the_model(tiny_engine):
    counter = PassCounter(tiny_engine)
    prompts = [counter.render([{"role": "user", "content": q}]) for q in ("1+1?", "2+2?", "3+3?")]
    assert counter.passes == 0  # rendering runs no model
    counter.generate(prompts, SamplingParams(n=2, max_new_tokens=2))
    assert counter.passes == 6
    counter.continuation_logprobs(prompts, ["1", "2", "3", "4"])
    assert counter.passes == 9  # one row per prompt, whatever the continuations
    assert counter.supports_logprobs is True
    extra = PassCounter(ExtraCapability())
    assert extra.token_stats(["a", "b"], ["c", "d"]) == [[0.0], [0.0]] and extra.passes == 2


def test_the_table_names_every_required_signal_and_nested_methods():
    assert len(SIGNALS) >= 13 and {"direct", "rubric", "pairwise", "consistency", "ensemble", "random"} <= set(SIGNALS)
    nested = SIGNALS["semantic_x_certainty"]
    assert list(section_methods(nested)) == ["ensemble", "semantic_agreement", "self_certainty"]
    assert signal_names([]) == list(SIGNALS) and signal_names(["random", "direct", "random"]) == ["random", "direct"]
    with pytest.raises(AutodidactError, match="unknown signal 'oracle'"):
        signal_names(["direct", "oracle"])


def tiny_config(model_dir: str):
    overrides = [
        f"model.name={model_dir}", "model.dtype=float32", "model.device=cpu", "tasks.train_size=4",
        "tasks.heldout_size=4", "tasks.min_heldout=1", "tasks.prompts_per_iteration=2", "generation.max_new_tokens=4",
        "judge.batch_size=8",
    ]  # fmt: skip
    return load_config(DEFAULT_CONFIG, overrides)


@pytest.fixture
def calls(monkeypatch):
    """Counts generation calls and judge calls made by the screen."""
    counts = {"answer": 0, "judge": 0}
    answer, build_judge = screen_module.answer, screen_module.build_judge

    def counted_answer(*args, **kwargs):
        counts["answer"] += 1
        return answer(*args, **kwargs)

    def counted_build(*args, **kwargs):
        judge = build_judge(*args, **kwargs)
        inner = judge.judge

        def judge_call(items):
            counts["judge"] += 1
            return inner(items)

        judge.judge = judge_call
        return judge

    monkeypatch.setattr(screen_module, "answer", counted_answer)
    monkeypatch.setattr(screen_module, "build_judge", counted_build)
    return counts


def test_screen_scores_caches_and_reuses(tiny_llama, tmp_path, calls, monkeypatch):
    monkeypatch.setitem(SIGNALS, "future", {"method": "ensemble", "members": [{"method": "not_yet_a_judge"}]})
    config, out, notes = tiny_config(tiny_llama), tmp_path / "screen", []
    first = screen(config, 2, 2, ["direct", "consistency", "future"], out, note=notes.append)
    assert calls == {"answer": 1, "judge": 4}  # one sampling; 2 signals x 2 tasks
    assert notes == ["signal future skipped: judge method not_yet_a_judge is not registered"]
    assert first.skipped == {"future": "judge method not_yet_a_judge is not registered"}
    cached = json.loads((out / SAMPLES_FILE).read_text())
    assert len(cached["samples"]) == 8 and {r["verdict"] for r in cached["samples"]} <= {0.0, 1.0}
    for task in ("arithmetic", "instructions"):
        direct, consistency = first.rows[task]["direct"], first.rows[task]["consistency"]
        assert (direct.samples, direct.prompts, direct.failed) == (4, 2, 0)
        assert direct.passes_per_sample == 1.0  # one scoring row per sample (logprobs mode)
        assert consistency.passes_per_sample == 0.0  # votes need no model
        c = first.ceilings[task]
        task_rows = [r for r in cached["samples"] if r["prompt_id"].startswith(task)]
        assert c.sample_pass_rate == sum(r["verdict"] for r in task_rows) / 4
    assert json.loads((out / "screen.json").read_text())["tasks"]["arithmetic"]["signals"]["direct"]["samples"] == 4
    assert "### arithmetic" in (out / "screen.md").read_text()

    again = screen(config, 2, 2, ["direct", "consistency", "random"], out, note=notes.append)
    assert calls == {"answer": 1, "judge": 6}  # nothing sampled again; only random scored (2 tasks)
    for task in ("arithmetic", "instructions"):
        assert again.rows[task]["direct"] == first.rows[task]["direct"]
        assert again.rows[task]["random"].passes == 0 and list(again.rows[task]) == ["direct", "consistency", "random"]

    with pytest.raises(AutodidactError, match=r"other settings \(samples\)"):
        screen(config, 2, 3, ["direct"], out)
    assert calls["answer"] == 1


def test_cli_unknown_signal_is_one_line(tmp_path):
    proc = autodidact("screen", "--signals", "direct,oracle", "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        "error: --signals: unknown signal 'oracle'. Choose one of: " + ", ".join(sorted(SIGNALS)) + "."
    ]
    assert not (tmp_path / "s").exists()


def test_an_ensemble_of_screened_signals_is_combined_from_their_scores():
    from autodidact.apps.screen import _combined
    from autodidact.apps.screen_signals import SIGNALS

    done = {
        "consistency": {"t": ({"a": 10.0, "b": 2.5, "c": None}, 0, 0.0)},
        "self_certainty": {"t": ({"a": 4.0, "b": None, "c": None}, 16, 2.0)},
    }
    combined = _combined(SIGNALS["consistency_x_certainty"], done)
    scores, passes, seconds = combined["t"]
    assert scores["a"] == pytest.approx(10 * (1.0 * 0.4) ** 0.5) and scores["b"] == 2.5 and scores["c"] is None
    assert (passes, seconds) == (16, 2.0)  # the members' costs, summed
    assert _combined(SIGNALS["ensemble"], done) is None  # direct and rubric not screened yet: scored by the judge
    assert _combined(SIGNALS["direct"], done) is None
