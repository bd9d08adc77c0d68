"""Numerical faults: a NaN loss or a held-out collapse rolls the iteration back, then retries or stops."""

from __future__ import annotations

import math

import pytest
import torch
from tests.loop.conftest import plan_with
from tests.loop.test_loop import tiny_config

import autodidact.loop
from autodidact.config import validate_config
from autodidact.evaluation import evaluate_heldout
from autodidact.loop import STORE_FILE
from autodidact.loop.stages import Evaluate, Train
from autodidact.store import RunStore
from autodidact.training import load_policy, train_sft
from autodidact.training.faults import TrainingFault, check_heldout, check_training, restore_policy


def _nan_on_first_call(calls: list):
    """train_sft that corrupts a LoRA weight and reports a NaN loss the first time it is called."""

    def train(policy, tokenizer, examples, config, seed, report=None):
        calls.append(config.learning_rate)
        result = train_sft(policy, tokenizer, examples, config, seed=seed, report=report)
        if len(calls) == 1:
            with torch.no_grad():
                next(p for n, p in policy.named_parameters() if "lora_A" in n).fill_(float("nan"))
            return type(result)(**{**result.__dict__, "loss": float("nan")})
        return result

    return train


def _config(model, out, **training):
    config = tiny_config(model, out, max_iterations=1)
    config["training"] |= training
    config["monitors"] = {"diversity": {"prompts": 0}}
    return config


def test_a_nan_loss_rolls_back_and_retries_at_a_lower_learning_rate(tiny_llama, tmp_path):
    calls: list[float] = []
    config = _config(tiny_llama, tmp_path, learning_rate=1e-3, retry_lr_factor=0.25)
    result = autodidact.loop.run(config, plan=plan_with(config, Train(sft=_nan_on_first_call(calls))))
    assert calls == [1e-3, 2.5e-4]
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.faults() == [{"iteration": 1, "attempt": 1, "reason": "non-finite training loss (nan)",
                                   "learning_rate": 1e-3, "action": "retry at learning rate 0.00025"}]
        assert store.stage_info(1, "train")["learning_rate"] == 2.5e-4
        assert store.counts()["checkpoints"] == 1
        checkpoint = store.checkpoint(1)
    policy, _ = load_policy(validate_config(_config(tiny_llama, tmp_path)), checkpoint)
    assert all(torch.isfinite(p).all() for p in policy.parameters())  # the NaN never reached a checkpoint


def test_with_on_fault_stop_the_run_ends_at_the_previous_model(tiny_llama, tmp_path):
    config = _config(tiny_llama, tmp_path, on_fault="stop")
    result = autodidact.loop.run(config, plan=plan_with(config, Train(sft=_nan_on_first_call([]))))
    assert result.stop_reason.startswith("training fault at iteration 1 (non-finite training loss (nan))")
    assert [row["iteration"] for row in result.iterations] == [0] and result.best_checkpoint is None
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.counts()["checkpoints"] == 0 and not store.stage_done(1, "train")
        assert [f["action"] for f in store.faults()] == ["stop"]
    assert not (tmp_path / "run" / "checkpoints" / "iter-1").exists()


def test_a_heldout_collapse_is_rolled_back_and_retried(tiny_llama, tmp_path):
    seen = []

    def collapsing(*args, **kwargs):
        result = evaluate_heldout(*args, **kwargs)
        seen.append(args[4])
        if args[4] == 1 and seen.count(1) == 1:  # iteration 1, first try: pretend the metric fell to 0
            result.metrics[""]["heldout_metric"] = -1.0
        return result

    config = _config(tiny_llama, tmp_path)
    config["stopping"]["max_metric_drop"] = 0.2
    result = autodidact.loop.run(config, plan=plan_with(config, Evaluate(evaluate=collapsing)))
    # Each evaluation answers the held-out set, then the paraphrased one; the collapsed first try at
    # iteration 1 stops before its paraphrased set, the retry evaluates both.
    assert seen == [0, 0, 1, 1, 1] and result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        (fault,) = store.faults()
        assert fault["reason"].startswith("held-out metric collapsed from") and "to -1.000" in fault["reason"]
        assert store.metric(1, "heldout_metric") >= 0.0  # the collapsed figure was never stored


def test_checks_and_restoring_the_base_model(tiny_llama):
    with pytest.raises(TrainingFault, match="non-finite training loss"):
        check_training(torch.nn.Linear(1, 1), math.inf)
    check_heldout(0.5, 0.31, 0.2)  # a 0.19 drop is within the bound
    with pytest.raises(TrainingFault, match="collapsed from 0.500 to 0.290"):
        check_heldout(0.5, 0.29, 0.2)
    config = validate_config(_config(tiny_llama, "/tmp"))
    policy, tokenizer = load_policy(config, None)
    ids = tokenizer("What is 2 + 2?", return_tensors="pt").input_ids
    with torch.no_grad():
        base = policy(ids).logits
        for name, param in policy.named_parameters():
            if "lora_" in name:
                param.add_(0.5)
        assert not torch.allclose(policy(ids).logits, base)
        restore_policy(policy, config, None)
        assert torch.allclose(policy(ids).logits, base, atol=1e-6)


def test_restoring_a_checkpoint_gives_back_its_weights_in_place(tiny_llama, tmp_path):
    from autodidact.training import save_checkpoint

    config = validate_config(_config(tiny_llama, tmp_path))
    policy, tokenizer = load_policy(config, None)
    ids = tokenizer("What is 2 + 2?", return_tensors="pt").input_ids
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_" in name:
                param.add_(0.3)
        saved = policy(ids).logits
        path = save_checkpoint(policy, tokenizer, tmp_path / "iter-1")
        for name, param in policy.named_parameters():
            if "lora_" in name:
                param.fill_(float("nan"))
        restore_policy(policy, config, str(path))
        assert torch.allclose(policy(ids).logits, saved, atol=1e-6)
