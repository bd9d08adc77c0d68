"""Canaries for autodidact.compat.trl: each fails with one line naming the workaround when TRL changes under it."""

from __future__ import annotations

import pytest
import torch

from autodidact.compat import trl as compat
from autodidact.config import TrainingConfig
from autodidact.models import load_model
from autodidact.training.policy import prepare_policy

ROWS = [
    {
        "prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
        "completion": [{"role": "assistant", "content": f"The answer is {i + 1}."}],
    }
    for i in range(2)
]
PAIRS = [
    {"prompt": r["prompt"], "chosen": r["completion"], "rejected": [{"role": "assistant", "content": "no"}]}
    for r in ROWS
]


def _sft_trainer(model, tokenizer, tmp_path, trainer_class=None):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, report_to="none", use_cpu=True, bf16=False)
    return (trainer_class or SFTTrainer)(
        model=model, args=args, train_dataset=Dataset.from_list(ROWS), processing_class=tokenizer
    )


def _dpo_trainer(model, tokenizer, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(tmp_path), precompute_ref_log_probs=True, report_to="none", use_cpu=True, bf16=False,
        max_length=64,
    )
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(PAIRS), processing_class=tokenizer)


def test_forward_kept_undoes_the_fused_lm_head_forward_trl_leaves_on_the_model(tiny_llama, tmp_path):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    use_cache = model.config.use_cache
    with compat.forward_kept(model):
        _sft_trainer(model, tokenizer, tmp_path)
        model.config.use_cache = not use_cache  # as TRL's trainers turn it off for training
        if "forward" not in vars(model):
            pytest.fail(
                "compat.trl.forward_kept: TRL's SFTTrainer no longer sets a fused-LM-head forward on the model "
                "instance; revisit the workaround (it may be unneeded)"
            )
    if any("forward" in vars(module) for module in model.modules()):
        pytest.fail("compat.trl.forward_kept: TRL's forward patch is no longer an instance attribute; revisit it")
    assert model.config.use_cache == use_cache


def test_model_loss_on_cpu_equals_trls_fused_loss(tiny_llama, tmp_path):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    fused = _sft_trainer(model, tokenizer, tmp_path)
    plain = _sft_trainer(model, tokenizer, tmp_path, compat.model_loss_on_cpu(type(fused)))
    batch = fused.data_collator([fused.train_dataset[i] for i in range(len(ROWS))])
    if not (batch["labels"][:, 0] == -100).all():
        pytest.fail(
            "compat.trl.model_loss_on_cpu: TRL's SFT collator no longer masks the prompt in `labels`; the model's "
            "own loss would train on the prompt; revisit the workaround"
        )
    with torch.no_grad():
        want = fused.compute_loss(model, dict(batch))
        got = plain.compute_loss(model, dict(batch))
    if not torch.allclose(want, got, rtol=1e-5, atol=1e-6):
        pytest.fail(
            f"compat.trl.model_loss_on_cpu: the model's own loss ({got.item():.6f}) no longer equals TRL's SFT "
            f"loss ({want.item():.6f}); revisit the workaround"
        )


def test_dpo_clones_the_policy_adapter_under_the_reference_name(tiny_llama, tmp_path):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = prepare_policy(model, TrainingConfig(lora_r=2))
    with compat.forward_kept(policy):
        _dpo_trainer(policy, tokenizer, tmp_path)
    if compat.REFERENCE_ADAPTER not in policy.peft_config:
        pytest.fail(
            f"compat.trl.REFERENCE_ADAPTER: TRL's DPOTrainer no longer clones a PeftModel's adapter as "
            f"'{compat.REFERENCE_ADAPTER}' (now: {sorted(policy.peft_config)}); revisit the workaround"
        )
    compat.check_reference_clone(policy)  # does not raise
    compat.drop_reference_clone(policy)
    assert sorted(policy.peft_config) == ["default"]
    assert not any(f".{compat.REFERENCE_ADAPTER}." in name for name, _ in policy.named_parameters())


def test_check_reference_clone_names_the_fix_when_there_is_no_clone(tiny_llama):
    from autodidact.errors import AutodidactError

    model, _ = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = prepare_policy(model, TrainingConfig(lora_r=2))
    with pytest.raises(AutodidactError, match="peft >= 0.20"):
        compat.check_reference_clone(policy)
    compat.check_reference_clone(torch.nn.Linear(1, 1))  # not a PeftModel: nothing to check
