"""Experiment tracking: the payload read from the store, TensorBoard read back from its event files,
W&B and MLflow through stand-in modules (and a real MLflow file store where MLflow is installed),
and a real trainer's own logs routed through report_to."""

from __future__ import annotations

import importlib.util
import io
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console
from tests.apps.test_review import build_run, score_item

from autodidact.apps.review.cli import review_command
from autodidact.config import RunConfig, to_yaml
from autodidact.errors import AutodidactError
from autodidact.records import Alert, Judgment, Prompt, Rating, Sample
from autodidact.review.gate import agreement_stop
from autodidact.store import RunStore
from autodidact.tracking import (
    TrainerReport,
    iteration_payload,
    make_tracker,
    markdown_table,
    require_tracker,
    run_tracker,
)

CONFIG = {"name": "demo", "seed": 3, "training": {"method": "sft", "learning_rate": 0.0001}}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _fill(store: RunStore) -> None:
    """Iteration 0 (base model) and 1: two tasks' train prompts, judged samples, every kind of metric."""
    prompts = [
        Prompt("a1", "arithmetic", "train", user("1+1?")),
        Prompt("a2", "arithmetic", "train", user("2+2? | pipes\nand lines")),
        Prompt("i1", "instructions", "train", user("Say hi.")),
        Prompt("h1", "arithmetic", "heldout", user("3+3?")),
    ]
    samples = [
        Sample("it1-a1-0", "a1", 1, 0, "2", 1), Sample("it1-a1-1", "a1", 1, 1, "3", 1),
        Sample("it1-a1-2", "a1", 1, 2, "two", 1),  # ties with it1-a1-0 for best
        Sample("it1-a2-0", "a2", 1, 0, "4", 1), Sample("it1-a2-1", "a2", 1, 1, "five", 1),  # a2-1: failed judgment
        Sample("it1-i1-0", "i1", 1, 0, "hi", 1), Sample("it1-i1-1", "i1", 1, 1, "no", 1),
        Sample("it1-i1-rev0", "i1", 1, 3, "hi!", 1),  # a revision: not judged, not shown
        Sample("it1-h1-0", "h1", 1, 0, "6", 1),  # a held-out answer: not a training sample
    ]
    scores = {"it1-a1-0": 9.0, "it1-a1-1": 2.0, "it1-a1-2": 9.0, "it1-a2-0": 7.0, "it1-a2-1": None,
              "it1-i1-0": 8.0, "it1-i1-1": 1.0, "it1-h1-0": 5.0}
    with store.transaction():
        store.add_prompts(prompts)
        store.add_samples(samples)
        store.add_judgments([Judgment(sid, "direct", score) for sid, score in scores.items()])
        store.add_metrics(0, {"pass_rate": 0.25, "heldout_metric": 0.25, "judge_score": None})
        store.add_metrics(0, {"pass_rate": 0.25}, task="arithmetic")
        store.finish_stage(0, "evaluate", 1.5)
        store.finish_stage(0, "monitor", 0.5, {"alerts": 0})
        store.finish_stage(1, "generate", 2.0, {"prompts": 3})
        store.add_metrics(1, {"position_consistency": 0.75, "vote_margin": None})
        store.finish_stage(1, "judge", 3.0, {"position_consistency": 0.75, "vote_margin": None, "failed": 1})
        store.finish_stage(1, "select", 0.25, {"kept": 3})
        store.finish_stage(1, "train", 4.0, {"examples": 3, "steps": 1, "tokens": 30, "loss": 1.25, "seconds": 4.0})
        store.add_metrics(1, {"pass_rate": 0.5, "heldout_metric": 0.5, "judge_score": 6.5})
        store.add_metrics(1, {"pass_rate": 0.5, "judge_score": 6.5}, task="arithmetic")
        store.add_metrics(1, {"pass_rate": None, "judge_score": 7.0}, task="instructions")
        store.finish_stage(1, "evaluate", 1.0)
        store.add_metrics(1, {"distinct_2": 0.625, "train_judge_score": 6.0, "gain": None})
        store.add_alerts([Alert(1, "bias", "long answers score higher")])
        store.finish_stage(1, "monitor", 0.75, {"alerts": 1})


@pytest.fixture
def store(tmp_path: Path):
    with RunStore(tmp_path / "run.sqlite") as s:
        _fill(s)
        yield s


ITERATION_1 = {
    "judge/position_consistency": 0.75,
    "heldout/pass_rate": 0.5, "heldout/heldout_metric": 0.5, "heldout/judge_score": 6.5,
    "heldout/arithmetic/pass_rate": 0.5, "heldout/arithmetic/judge_score": 6.5,
    "heldout/instructions/judge_score": 7.0,
    "monitors/distinct_2": 0.625, "monitors/train_judge_score": 6.0,
    "stage_seconds/generate": 2.0, "stage_seconds/judge": 3.0, "stage_seconds/select": 0.25,
    "stage_seconds/train": 4.0, "stage_seconds/evaluate": 1.0, "stage_seconds/monitor": 0.75,
    "training/loss": 1.25, "training/examples": 3.0, "training/steps": 1.0, "training/tokens": 30.0,
    "selection/kept": 3.0, "judge/failed": 1.0, "monitors/alerts": 1.0,
}


def test_payload_names_every_metric_and_leaves_out_none(store):
    metrics, samples = iteration_payload(store, 1)
    assert metrics == ITERATION_1  # vote_margin, gain, instructions/pass_rate are None: absent, not 0
    assert iteration_payload(store, 0) == (
        {"heldout/pass_rate": 0.25, "heldout/heldout_metric": 0.25, "heldout/arithmetic/pass_rate": 0.25,
         "stage_seconds/evaluate": 1.5, "stage_seconds/monitor": 0.5, "monitors/alerts": 0.0},
        [],  # the base model iteration has no training samples
    )


def test_sample_rows_show_best_and_worst_with_tasks_taking_turns(store):
    _, rows = iteration_payload(store, 1)
    assert rows == [
        {"task": "arithmetic", "prompt": "1+1?", "best_score": 9.0, "best": "2", "worst_score": 2.0, "worst": "3",
         "samples": 3},
        {"task": "instructions", "prompt": "Say hi.", "best_score": 8.0, "best": "hi", "worst_score": 1.0,
         "worst": "no", "samples": 2},
        {"task": "arithmetic", "prompt": "2+2? | pipes\nand lines", "best_score": 7.0, "best": "4",
         "worst_score": 7.0, "worst": "4", "samples": 1},
    ]
    from autodidact.tracking import sample_rows

    assert len(sample_rows(store, 1, limit=2)) == 2
    table = markdown_table(rows).splitlines()
    assert table[0] == "| task | prompt | best_score | best | worst_score | worst | samples |"
    assert table[4] == "| arithmetic | 2+2? \\| pipes<br>and lines | 7 | 4 | 7 | 4 | 1 |"


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _texts(events, tag: str) -> dict[int, str]:
    return {e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors(f"{tag}/text_summary")}


def test_tensorboard_event_files_hold_the_exact_scalars_samples_and_config(store, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is a dependency; install it")
    tracker = make_tracker("tensorboard", tmp_path / "run", "demo", CONFIG)
    assert tracker.report_to == "tensorboard"
    for it in (0, 1):
        tracker.log_iteration(it, *iteration_payload(store, it))
    tracker.log_iteration(2, {"heldout/pass_rate": None, "monitors/distinct_2": 0.5})
    tracker.close()

    events = _events(tmp_path / "run" / "tracking")
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert set(scalars) == set(ITERATION_1)  # iteration 0's names are a subset
    assert scalars["heldout/pass_rate"] == [(0, 0.25), (1, 0.5)]  # None at 2: no point, not 0
    assert scalars["monitors/distinct_2"] == [(1, 0.625), (2, 0.5)]
    assert scalars["stage_seconds/train"] == [(1, 4.0)]
    assert {tag: v for tag, points in scalars.items() for step, v in points if step == 1} == ITERATION_1
    samples = _texts(events, "samples")
    assert list(samples) == [1] and samples[1] == markdown_table(iteration_payload(store, 1)[1])
    config = _texts(events, "config")
    assert list(config) == [0] and "    name: demo" in config[0] and "learning_rate: 0.0001" in config[0]


def test_human_agreement_reaches_tensorboard_from_the_review_gate_and_an_import(tmp_path):
    """Ratings arrive after their iteration was sent: the loop's review gate and `review --import` send the
    changed `review/human_*` figures, stepped by the checkpoint's iteration, and nothing unchanged twice."""
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    store = build_run(run_dir, [score_item("a", "p0-s0", 2), score_item("b", "p0-s1", 5), score_item("c", "p0-s2", 8),
                                score_item("d", "p1-s0", 1, iteration=2), score_item("e", "p1-s1", 4, iteration=2)])
    config = RunConfig(name="demo", tracking="tensorboard", review={"min_ratings": 2})
    (run_dir / "config.yaml").write_text(to_yaml(config), encoding="utf-8")

    tracker = run_tracker(config, run_dir)
    agreement_stop(store, config.review, tracker)  # nothing rated yet: nothing to send
    with store.transaction():
        for item_id, value in [("a", 1.0), ("b", 6.0), ("c", 7.0)]:  # ranked as the judge ranks them
            store.rate(Rating(item_id, value, "ann"))
    assert agreement_stop(store, config.review, tracker) is None
    agreement_stop(store, config.review, tracker)  # the same figures: not sent again
    tracker.close()
    (tmp_path / "r.csv").write_text("item_id,rating\nd,9\ne,3\n", encoding="utf-8")  # against the judge
    review_command(run_dir, import_file=tmp_path / "r.csv", console=Console(file=io.StringIO()))

    events = _events(run_dir / "tracking")
    # Sorted by step: the two writers' event files are read in name order, and a name ends in a per-process
    # counter ("...pid.9" sorts after "...pid.10" once a test session has opened ten writers).
    scalars = {tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in events.Tags()["scalars"]}
    assert scalars == {
        "review/human_ratings": [(1, 3.0), (2, 2.0)],
        "review/human_spearman": [(1, 1.0), (2, -1.0)],
        "review/human_agreement": [(1, 1.0), (2, -1.0)],
    }
    assert (store.metric(1, "human_agreement"), store.metric(2, "human_agreement")) == (1.0, -1.0)
    store.close()


def test_training_report_per_tracker(tmp_path):
    pytest.importorskip("tensorboard")
    with make_tracker("none", tmp_path, "demo", CONFIG).training(1) as report:
        assert report == TrainerReport() and report.arguments() == {"report_to": "none", "run_name": None}
    tracker = make_tracker("tensorboard", tmp_path, "demo", CONFIG)
    with tracker.training(2) as report:
        assert report == TrainerReport("tensorboard", "demo-iter-2", str(tmp_path / "tracking" / "train" / "iter-2"))
    tracker.close()
    with pytest.raises(AutodidactError, match="tracking: unknown tracker 'tensorbord'.*Did you mean 'tensorboard'"):
        make_tracker("tensorbord", tmp_path, "demo", CONFIG)


@pytest.mark.parametrize(("kind", "module"), [("wandb", "wandb"), ("mlflow", "mlflow"),
                                              ("tensorboard", "torch.utils.tensorboard")])
def test_a_missing_package_is_a_clear_error(kind, module, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    message = f"tracking: {kind} is not installed; pip install {kind}, or set tracking: none"
    for build in (lambda: require_tracker(kind), lambda: make_tracker(kind, tmp_path, "demo", CONFIG)):
        with pytest.raises(AutodidactError) as err:
            build()
        assert str(err.value) == message
    assert not (tmp_path / "tracking").exists()
    assert require_tracker("none") is None


class _Recorder:
    """Stands in for a module or run object: records every call as (name, args, kwargs)."""

    def __init__(self, calls: list, prefix: str = ""):
        self._calls, self._prefix = calls, prefix

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self._calls.append((self._prefix + name, args, kwargs))
            return _Recorder(self._calls, "run.") if name == "init" else types.SimpleNamespace(args=args, **kwargs)

        return call


def test_wandb_logs_against_an_iteration_axis_and_resumes_the_same_run(store, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", _Recorder(calls))
    monkeypatch.setenv("WANDB_PROJECT", "proj")
    tracker = make_tracker("wandb", tmp_path, "demo", CONFIG)
    metrics, samples = iteration_payload(store, 1)
    tracker.log_iteration(1, {**metrics, "monitors/gain": None}, samples)
    tracker.log_iteration(2, {"heldout/pass_rate": 0.75})
    with tracker.training(3) as report:
        assert report == TrainerReport("wandb", "demo-iter-3")
    tracker.close()

    name, _, init = calls[0]
    run_id = (tmp_path / "tracking" / "wandb-run-id").read_text()
    assert name == "init" and init == {"project": "proj", "name": "demo", "id": run_id, "config": CONFIG,
                                       "dir": str(tmp_path / "tracking"), "resume": "allow"}
    defined = [(c[1], c[2]) for c in calls if c[0] == "run.define_metric"]
    assert defined[0] == (("iteration",), {})
    assert sorted(d[0][0] for d in defined[1:]) == sorted(metrics)  # each name once, on the iteration axis
    assert all(d[1] == {"step_metric": "iteration"} for d in defined[1:])
    logs = [c for c in calls if c[0] == "run.log"]
    assert len(logs) == 2 and all("step" not in kwargs for _, _, kwargs in logs)
    first = logs[0][1][0]
    assert first["iteration"] == 1 and "monitors/gain" not in first
    assert {k: v for k, v in first.items() if k not in ("iteration", "samples")} == metrics
    table = first["samples"]
    assert table.columns == list(samples[0]) and table.data[0] == list(samples[0].values())
    assert logs[1][1][0] == {"iteration": 2, "heldout/pass_rate": 0.75}
    assert calls[-1][0] == "run.finish"

    calls.clear()
    make_tracker("wandb", tmp_path, "demo", CONFIG)  # a resumed run continues the same W&B run
    assert calls[0][2]["id"] == run_id


def test_mlflow_calls_through_a_stand_in(store, tmp_path, monkeypatch):
    calls: list = []
    fake = _Recorder(calls)
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    fake_run = types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1"))
    monkeypatch.setattr(_Recorder, "start_run", lambda self, **kw: calls.append(("start_run", (), kw)) or fake_run,
                        raising=False)
    big = {"a": {"b": 1, "c": "x" * 300}, **{f"k{i}": i for i in range(150)}}
    tracker = make_tracker("mlflow", tmp_path, "demo", big)
    assert calls[0] == ("start_run", (), {"run_id": None, "run_name": "demo"})
    batches = [c[1][0] for c in calls if c[0] == "log_params"]
    assert [len(b) for b in batches] == [100, 52] and batches[0]["a.b"] == "1" and batches[0]["a.c"] == "x" * 250
    metrics, samples = iteration_payload(store, 1)
    tracker.log_iteration(1, {**metrics, "monitors/gain": None}, samples)
    assert ("log_metrics", (metrics,), {"step": 1}) in calls
    assert ("log_text", (markdown_table(samples), "samples/iter-1.md"), {}) in calls
    calls.clear()
    make_tracker("mlflow", tmp_path, "demo", big)
    assert calls[0] == ("start_run", (), {"run_id": "r1", "run_name": None})  # resumed


def test_mlflow_file_store_round_trip(store, tmp_path, monkeypatch):
    if importlib.util.find_spec("mlflow") is None:
        pytest.skip("mlflow is not installed (optional); the stand-in test covers the calls")
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'mlruns'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses the file store without it
    tracker = make_tracker("mlflow", tmp_path / "run", "demo", CONFIG)
    metrics, samples = iteration_payload(store, 1)
    tracker.log_iteration(0, iteration_payload(store, 0)[0])
    tracker.log_iteration(1, metrics, samples)
    with tracker.training(1) as report:
        assert report.report_to == "mlflow"
        child = mlflow.active_run().info.run_id
        mlflow.log_params({"seed": 4})  # what the trainer's MLflowCallback does, in its own run
    tracker.close()
    make_tracker("mlflow", tmp_path / "run", "demo", CONFIG).close()  # a resumed run: the same MLflow run

    client = mlflow.MlflowClient()
    run_id = (tmp_path / "run" / "tracking" / "mlflow-run-id").read_text()
    run = client.get_run(run_id)
    assert run.info.run_name == "demo" and run.data.params["training.learning_rate"] == "0.0001"
    history = client.get_metric_history(run_id, "heldout/pass_rate")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.25), (1, 0.5)]
    assert client.get_metric_history(run_id, "monitors/gain") == []
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == run_id
    assert len(client.search_runs([run.info.experiment_id])) == 2  # the run and its training child, nothing new
    text = Path(client.download_artifacts(run_id, "samples/iter-1.md", str(tmp_path / "dl"))).read_text()
    assert text == markdown_table(samples)


def test_trainer_logs_reach_the_iteration_folder_through_report_to(tiny_llama, tmp_path):
    """A real SFT run with report_to='tensorboard': the loss lands in tracking/train/iter-N, the rich bar stays."""
    from autodidact.config import TrainingConfig
    from autodidact.models import load_model
    from autodidact.records import SFTExample
    from autodidact.training import prepare_policy, train_sft

    tracker = make_tracker("tensorboard", tmp_path, "demo", CONFIG)
    config = TrainingConfig(lora_r=2, lora_alpha=4, batch_size=2)
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    examples = [SFTExample(f"s{i}", f"p{i}", user(f"{i}+1?"), str(i + 1), 9.0) for i in range(4)]
    with tracker.training(1) as report:
        result = train_sft(prepare_policy(model, config), tokenizer, examples, config, seed=0, report=report)
    tracker.close()

    events = _events(tmp_path / "tracking" / "train" / "iter-1")
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2] == list(range(1, result.steps + 1))
    assert all(e.value > 0 for e in losses)
    assert "args/text_summary" in events.Tags()["tensors"]


def test_a_run_with_tensorboard_sends_every_iteration(tiny_llama, tmp_path):
    """The loop wiring: after each monitor stage the iteration's metrics go to the tracker, step = iteration."""
    from tests.loop.test_loop import tiny_config

    import autodidact

    config = tiny_config(tiny_llama, tmp_path, max_iterations=1) | {"tracking": "tensorboard"}
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.run(config)
    events = _events(tmp_path / "run" / "tracking")
    passes = events.Scalars("heldout/pass_rate")
    assert [(e.step, e.value) for e in passes] == [
        (row["iteration"], pytest.approx(row["pass_rate"], abs=1e-6)) for row in result.iterations
    ]
    assert [e.step for e in events.Scalars("training/steps")] == [1]
    assert (tmp_path / "run" / "tracking" / "train" / "iter-1").is_dir()  # the trainer's own loss curve
