"""Canary for autodidact.compat.tqdm.quiet: TRL's DPO reference pass still takes its bar's switch from TQDM_DISABLE."""

from __future__ import annotations

import os

import pytest

from autodidact.compat.tqdm import ENV, quiet
from autodidact.models import load_model

BAR = "Computing reference log probs"
PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
        "chosen": [{"role": "assistant", "content": f"{i + 1}"}],
        "rejected": [{"role": "assistant", "content": "no"}],
    }
    for i in range(2)
]


def _dpo_trainer(model, tokenizer, output_dir):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(output_dir), precompute_ref_log_probs=True, report_to="none", use_cpu=True, bf16=False,
        max_length=64,
    )
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(PAIRS), processing_class=tokenizer)


def test_quiet_sets_the_variable_and_puts_it_back(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with quiet():
        assert os.environ[ENV] == "1"
    assert ENV not in os.environ
    monkeypatch.setenv(ENV, "0")
    with quiet():
        assert os.environ[ENV] == "1"
    assert os.environ[ENV] == "0"


def test_quiet_silences_trls_dpo_reference_bar(tiny_llama, tmp_path, capfd, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    _dpo_trainer(model, tokenizer, tmp_path / "loud")
    loud = capfd.readouterr().err
    with quiet():
        _dpo_trainer(model, tokenizer, tmp_path / "quiet")
    silent = capfd.readouterr().err
    if BAR not in loud or BAR in silent:
        pytest.fail(
            "compat.tqdm.quiet: TRL's DPO reference pass no longer draws a tqdm bar switched by TQDM_DISABLE; "
            "revisit the workaround"
        )
