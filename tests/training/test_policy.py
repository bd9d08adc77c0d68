"""The policy module: adapters drawn from the seed alone, one draw shared by a fresh policy and a rollback."""

from __future__ import annotations

import torch

from autodidact.config import RunConfig, TrainingConfig
from autodidact.training.policy import init_adapters, policy_from, restore_policy, save_checkpoint


def _lora(policy, part: str = "lora_A") -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.named_parameters() if part in n}


def test_a_rollback_to_the_base_draws_the_seeds_adapter_and_leaves_the_callers_rng(tiny_llama):
    config = RunConfig(model={"name": tiny_llama, "dtype": "float32", "device": "cpu"}, seed=3,
                       training=TrainingConfig(lora_r=2))
    fresh, _ = policy_from(tiny_llama, None, config.training, "float32", "cpu", seed=3)
    rolled, _ = policy_from(tiny_llama, None, config.training, "float32", "cpu", seed=9)
    with torch.no_grad():
        for p in _lora(rolled, "lora_B"):
            rolled.get_parameter(p).fill_(1.0)  # trained: B no longer zero
    state = torch.random.get_rng_state()
    restore_policy(rolled, config, None)
    assert torch.equal(torch.random.get_rng_state(), state)
    want, got = _lora(fresh), _lora(rolled)
    assert len(want) == 14 and all(torch.equal(want[n], got[n]) for n in want)  # 2 layers x 7 projections
    assert all(not b.any() for b in _lora(rolled, "lora_B").values())


def test_a_checkpoint_loads_back_as_the_same_adapter(tiny_llama, tmp_path):
    training = TrainingConfig(lora_r=2)
    policy, tokenizer = policy_from(tiny_llama, None, training, "float32", "cpu", seed=1)
    init_adapters(policy, 5)
    path = save_checkpoint(policy, tokenizer, tmp_path / "iter-1")
    loaded, _ = policy_from(tiny_llama, str(path), training, "float32", "cpu")
    want, got = _lora(policy), _lora(loaded)
    assert want.keys() == got.keys() and all(torch.equal(want[n], got[n]) for n in want)
    assert all(p.requires_grad for n, p in loaded.named_parameters() if "lora_" in n)
