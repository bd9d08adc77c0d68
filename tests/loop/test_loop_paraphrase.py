"""The paraphrased held-out set in the loop: built once, evaluated every iteration, never trained on."""

from __future__ import annotations

from pathlib import Path
from statistics import fmean

import pytest
from tests.loop.conftest import plan_with
from tests.loop.test_loop import tiny_config

import autodidact
import autodidact.loop
from autodidact.loop import STORE_FILE
from autodidact.loop.stages import Train
from autodidact.records import PARAPHRASE_SPLIT
from autodidact.store import RunStore
from autodidact.training import train_sft

DATA = Path(__file__).parents[1] / "data" / "sources"


def test_paraphrased_heldout_is_evaluated_every_iteration_and_never_trained_on(tiny_llama, tmp_path, monkeypatch):
    trained: list[str] = []  # the prompt id of every example that reached training

    def recording_train_sft(policy, tokenizer, examples, *args, **kwargs):
        trained.extend(e.prompt_id for e in examples)
        return train_sft(policy, tokenizer, examples, *args, **kwargs)

    config = tiny_config(tiny_llama, tmp_path, max_iterations=2)
    # A file source beside the built-in tasks: it has no paraphrased set and must be skipped cleanly.
    source = {"type": "file", "name": "qa", "path": str(DATA / "good.jsonl"), "heldout_ratio": 0.4}
    config["tasks"] |= {"paraphrase_heldout_size": 3, "sources": [source], "min_heldout": 2}
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.loop.run(config, plan=plan_with(config, Train(sft=recording_train_sft)))
    assert [row["iteration"] for row in result.iterations] == [0, 1, 2]

    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        reworded = store.prompts(split=PARAPHRASE_SPLIT)
        seen = {p.text for p in store.prompts(split="train") + store.prompts(split="heldout")}
        by_id = {p.id: p for p in reworded}
        assert sorted(p.task for p in reworded) == ["arithmetic"] * 3 + ["instructions"] * 3
        assert not {p.text for p in reworded} & seen and not {p.meta["training_wording"] for p in reworded} & seen
        for it in range(3):
            answers = [s for s in store.samples(it) if s.prompt_id in by_id]
            assert {s.origin for s in answers} == {"heldout"}
            assert sorted(s.id for s in answers) == sorted(f"it{it}-{pid}-0" for pid in by_id)  # one greedy answer
            judged = {j.sample_id for j in store.judgments(it)}
            assert not judged & {s.id for s in answers}  # verified, never judged
        for it in (1, 2):
            assert store.selection(it) and not {e.prompt_id for e in store.selection(it)} & set(by_id)
            prompt_ids = set(store.stage_info(it, "generate").get("prompt_ids", [])) | {
                s.prompt_id for s in store.samples(it) if s.index > 0}
            assert not prompt_ids & set(by_id)  # never drawn for generation
    assert trained and not set(trained) & set(by_id)  # the assertion the issue asks for: training never saw them

    for row in result.iterations:
        for name in ("arithmetic", "instructions"):
            m = row["tasks"][name]
            assert 0.0 <= m["paraphrase_pass_low"] <= m["paraphrase_pass_rate"] <= m["paraphrase_pass_high"] <= 1.0
            assert m["paraphrase_n"] == 3.0 and m["n"] == 4.0  # the usual held-out set is unchanged
        assert not any(k.startswith("paraphrase_") for k in row["tasks"]["qa"])
        assert row["paraphrase_pass_rate"] == pytest.approx(
            fmean(row["tasks"][t]["paraphrase_pass_rate"] for t in ("arithmetic", "instructions"))
        )
        # Early stopping reads the usual held-out set only.
        rates = [m["pass_rate"] for m in row["tasks"].values() if m["pass_rate"] is not None]
        assert row["heldout_metric"] == pytest.approx(fmean(rates))


def test_paraphrased_heldout_size_zero_turns_it_off(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=1)
    config["tasks"]["paraphrase_heldout_size"] = 0
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.run(config)
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.prompts(split=PARAPHRASE_SPLIT) == []
        assert not [r for r in store.metrics() if r["name"].startswith("paraphrase_")]
        assert len(store.samples(0)) == 2 * 4
    assert "paraphrase_pass_rate" not in result.iterations[0]


def test_an_unreliable_self_judge_is_said_in_the_alerts_and_the_run_goes_on(tiny_llama, tmp_path, monkeypatch):
    # A random tiny model passes nothing, so no task has an AUC: give every task 0.55, below the default 0.6.
    monkeypatch.setattr("autodidact.evaluation.roc_auc", lambda scores, verdicts: 0.55)
    config = tiny_config(tiny_llama, tmp_path, max_iterations=1)
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.run(config)
    assert result.stop_reason == "reached max_iterations=1"  # the alert does not stop the run by default
    alerts = [a for a in result.alerts if a.monitor == "judge_reliability"]
    assert [(a.iteration, a.stop) for a in alerts] == [(0, False), (1, False)]
    assert alerts[0].message.startswith(
        "the self-judge's held-out scores barely track correctness on arithmetic (AUC 0.55; 0 of 4 answers pass) "
        "and instructions (AUC 0.55; "
    )
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert [a.message for a in store.alerts(1) if a.monitor == "judge_reliability"] == [alerts[1].message]
