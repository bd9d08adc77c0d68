"""The study's run records: a finished run's graded held-out answers survive its directory, exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from autodidact.config import to_yaml, validate_config
from autodidact.loop import CONFIG_FILE, STORE_FILE
from autodidact.records import Prompt, Sample, SFTExample
from autodidact.store import RunStore

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "study.py"
# split -> prompt -> reference, and iteration -> split -> prompt -> the answer stored.
REFERENCES = {"heldout": {"a": "4", "b": "7", "c": "9"}, "heldout_paraphrase": {"p": "2", "q": "5"}}
ANSWERS = {
    0: {"heldout": {"a": "4", "b": "1", "c": "1"}, "heldout_paraphrase": {"p": "1", "q": "5"}},  # 1/3, 1/2 right
    1: {"heldout": {"a": "4", "b": "7", "c": "9"}, "heldout_paraphrase": {"p": "2", "q": "5"}},  # all right
}


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study", STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished_run(run_dir: Path) -> Path:
    """A run directory whose store holds the held-out answers above and one training answer kept (right) at
    iteration 1, ended after iteration 1."""
    run_dir.mkdir()
    config = validate_config({"tasks": {"names": ["arithmetic"]}, "judge": {"method": "direct"}})
    (run_dir / CONFIG_FILE).write_text(to_yaml(config), encoding="utf-8")
    prompts = {
        k: Prompt(f"{split}-{k}", "arithmetic", split, [{"role": "user", "content": k}], ref)
        for split, refs in REFERENCES.items() for k, ref in refs.items()
    }
    train = Prompt("train-t", "arithmetic", "train", [{"role": "user", "content": "t"}], "3")
    with RunStore(run_dir / STORE_FILE) as store, store.transaction():
        store.add_prompts([*prompts.values(), train])
        for it, by_split in ANSWERS.items():
            store.add_metrics(it, {"pass_rate": 0.5})
            store.add_samples([
                Sample(f"it{it}-{k}", prompts[k].id, it, 0, text, 1)
                for answers in by_split.values() for k, text in answers.items()
            ])
        store.add_samples([Sample("it1-t", train.id, 1, 0, "3", 1)])
        store.add_selection(1, [SFTExample("it1-t", train.id, train.messages, "3", 5.0)])
        store.set_meta("stop_reason", "max_iterations")
    return run_dir


def test_a_record_stands_in_for_its_run_directory(study, tmp_path):
    run_dir = _finished_run(tmp_path / "route_big-s0")
    records = tmp_path / "records"
    before = study.verdicts(run_dir, None)

    study.save_record(records, run_dir)
    (run_dir / STORE_FILE).unlink()  # the directory is gone (another machine, another session)

    saved = json.loads((records / "route_big-s0.json").read_text(encoding="utf-8"))
    assert saved["decay"] == ["route_big-s0 arithmetic: right / kept 1 / 1"]
    assert study.verdicts(run_dir, records) == before
    assert before["heldout"][1]["arithmetic"] == {"heldout-a": 1.0, "heldout-b": 1.0, "heldout-c": 1.0}
    row = study.summarize("route_big", [run_dir], records)["splits"]
    assert row["heldout"]["gain"] == pytest.approx(2 / 3)  # 1/3 -> 3/3, paired per prompt
    assert row["heldout_paraphrase"]["gain"] == pytest.approx(1 / 2)
    assert row["heldout"]["pass_by_iteration"] == {0: pytest.approx(1 / 3), 1: 1.0}


def test_a_run_directory_that_is_here_is_read_before_its_record(study, tmp_path):
    run_dir = _finished_run(tmp_path / "random_big-s1")
    records = tmp_path / "records"
    records.mkdir()
    (records / "random_big-s1.json").write_text(json.dumps({"verdicts": {}, "decay": []}), encoding="utf-8")

    assert study.read_record(records, run_dir) is None
    assert study.verdicts(run_dir, records)["heldout"][0]["arithmetic"]["heldout-a"] == 1.0
