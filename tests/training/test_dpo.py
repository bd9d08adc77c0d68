"""DPO: pairs in the store, training through TRL, the previous iteration as reference, one loop iteration."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from unittest.mock import ANY

import pytest
import torch

import autodidact
from autodidact.config import TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.loop import STORE_FILE
from autodidact.models import load_model
from autodidact.records import PreferencePair, Prompt, Sample
from autodidact.store import RunStore
from autodidact.training import prepare_policy, train_dpo

PAIRS = [
    PreferencePair(
        prompt_id=f"p{i}",
        messages=[{"role": "user", "content": f"What is {i} + 1?"}],
        chosen=f"The answer is {i + 1}.",
        rejected="score rate grader",
        chosen_sample_id=f"s{i}-0",
        rejected_sample_id=f"s{i}-1",
        chosen_score=9.0,
        rejected_score=2.0,
    )
    for i in range(8)
]
CFG = dict(lora_r=4, lora_alpha=8, learning_rate=2e-2, batch_size=4, epochs=2.0)


# --- store ----------------------------------------------------------------------


def _store_with_samples(path) -> RunStore:
    store = RunStore(path)
    with store.transaction():
        store.add_prompts([Prompt(p.prompt_id, "t", "train", p.messages) for p in PAIRS])
        store.add_samples([Sample(f"s{i}-{k}", f"p{i}", 1, k, "x", 1) for i in range(8) for k in range(2)])
    return store


def test_pairs_round_trip_and_a_redo_does_not_duplicate(tmp_path):
    with _store_with_samples(tmp_path / STORE_FILE) as store:
        with pytest.raises(KeyboardInterrupt), store.transaction():  # killed before the stage committed
            store.add_pairs(1, PAIRS)
            raise KeyboardInterrupt
        assert store.pairs(1) == [] and store.counts()["pairs"] == 0
        with store.transaction():  # the redo
            store.add_pairs(1, PAIRS)
            store.finish_stage(1, "select", 0.1, {"pairs": len(PAIRS)})
        assert store.pairs(1) == PAIRS and store.pairs(2) == []
        assert store.counts()["pairs"] == len(PAIRS)
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            store.add_pairs(1, PAIRS[:1])
        assert store.counts()["pairs"] == len(PAIRS)


def test_run_directory_from_before_the_pairs_table_gains_it_on_open(tmp_path):
    path = tmp_path / STORE_FILE
    with _store_with_samples(path) as store:
        store._conn.execute("DROP TABLE pairs")  # what a store written before DPO looks like
    with RunStore(path) as store:
        assert store.counts()["pairs"] == 0 and store.counts()["samples"] == 16
        with store.transaction():
            store.add_pairs(1, PAIRS[:2])
        assert store.pairs(1) == PAIRS[:2]


# --- training -------------------------------------------------------------------


def completion_logp(model, tokenizer, messages, completion: str) -> float:
    """log P(completion | prompt) under `model`: the sum over the response tokens of the chat-formatted text."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": completion}], tokenize=True, return_dict=False
    )
    assert full[: len(prompt)] == prompt
    ids = torch.tensor([full])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0, :-1].float(), dim=-1)
    token_logps = logps.gather(-1, ids[0, 1:, None])[:, 0]  # (T-1,) log P(token t+1 | tokens <= t)
    return token_logps[len(prompt) - 1 :].sum().item()


def logps(model, tokenizer, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) log-probabilities of each pair, shape (N,) each."""
    chosen = [completion_logp(model, tokenizer, p.messages, p.chosen) for p in pairs]
    rejected = [completion_logp(model, tokenizer, p.messages, p.rejected) for p in pairs]
    return torch.tensor(chosen), torch.tensor(rejected)


@pytest.fixture
def reference_logps(monkeypatch):
    """Records the reference log-probs TRL computes, one (chosen, rejected) per `train_dpo` call."""
    from trl import DPOTrainer

    calls: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    original = DPOTrainer.__init__
    compute = DPOTrainer.compute_ref_log_probs

    def init(self, *args, **kwargs):
        calls.append([])
        original(self, *args, **kwargs)

    def spy(self, model, inputs):
        chosen, rejected = compute(self, model, inputs)
        calls[-1].append((chosen.detach().float(), rejected.detach().float()))
        return chosen, rejected

    monkeypatch.setattr(DPOTrainer, "__init__", init)
    monkeypatch.setattr(DPOTrainer, "compute_ref_log_probs", spy)

    def per_call():
        return [(torch.cat([c for c, _ in batches]), torch.cat([r for _, r in batches])) for batches in calls]

    return per_call


def test_lora_dpo_prefers_chosen_and_changes_only_adapter_weights(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = TrainingConfig(**CFG)
    torch.manual_seed(0)  # PEFT draws lora_A from the global RNG: seed it, or the result depends on test order
    policy = prepare_policy(model, config)
    adapters = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    base = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    chosen, rejected = logps(policy, tokenizer, PAIRS)

    result = train_dpo(policy, tokenizer, PAIRS, config, seed=0)

    assert result.examples == 8 and result.steps == 4 and result.loss > 0 and result.seconds > 0
    chosen_after, rejected_after = logps(policy, tokenizer, PAIRS)
    # Every pair's margin log P(chosen) - log P(rejected) grew, measured with the model itself.
    assert torch.all(chosen_after - rejected_after > chosen - rejected)
    assert adapters and all("lora_" in n for n in adapters)
    assert all(not torch.equal(adapters[n], p) for n, p in policy.named_parameters() if n in adapters)
    assert all(torch.equal(base[n], p) for n, p in policy.named_parameters() if n in base)
    # TRL's clone of the adapter (the reference) is gone: not trained further, not saved.
    assert list(policy.peft_config) == ["default"]
    assert not policy.training
    # Later generation and judging run in the model's own dtype: no autocast left on the live model.
    seen = []
    layer = policy.get_base_model().model.layers[0].self_attn.o_proj
    handle = layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with torch.no_grad():
        policy(input_ids=torch.tensor([[1, 2, 3]]))
    handle.remove()
    assert seen == [torch.float32]


def test_token_count_is_both_sequences_of_every_pair_without_padding(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = TrainingConfig(**{**CFG, "epochs": 1.0})
    pairs = PAIRS[:2]
    expected = sum(
        len(tokenizer.apply_chat_template([*p.messages, {"role": "assistant", "content": text}], return_dict=False))
        for p in pairs
        for text in (p.chosen, p.rejected)
    )
    result = train_dpo(prepare_policy(model, config), tokenizer, pairs, config, seed=0)
    assert result.tokens == expected and result.examples == 2 and result.steps == 1


def test_prompts_longer_than_max_length_are_an_error_not_a_silent_no_op(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = TrainingConfig(**{**CFG, "max_length": 16})
    long = [replace(p, messages=[{"role": "user", "content": "what is the answer " * 8}]) for p in PAIRS[:2]]
    with pytest.raises(AutodidactError, match="raise training.max_length"):
        train_dpo(prepare_policy(model, config), tokenizer, long, config, seed=0)
    assert train_dpo(model, tokenizer, [], config, seed=0).steps == 0  # no pairs: nothing to do, no error


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_reference_is_the_previous_iterations_model(tiny_llama, reference_logps, finetune):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = TrainingConfig(**{**CFG, "finetune": finetune, "learning_rate": 2e-2 if finetune == "lora" else 2e-3})
    policy = prepare_policy(model, config)
    first, second = PAIRS[:4], PAIRS[4:]
    initial = logps(policy, tokenizer, first)
    before = logps(policy, tokenizer, second)

    train_dpo(policy, tokenizer, first, config, seed=0)  # iteration 1
    after_first = logps(policy, tokenizer, second)
    train_dpo(policy, tokenizer, second, config, seed=1)  # iteration 2: its reference must be `after_first`

    calls = reference_logps()
    assert len(calls) == 2
    # Same weights, computed by TRL in padded batches: equal up to fp32 rounding (a few 1e-6 here).
    tol = 1e-4
    assert torch.allclose(calls[0][0], initial[0], atol=tol) and torch.allclose(calls[0][1], initial[1], atol=tol)
    ref_chosen, ref_rejected = calls[1]
    assert torch.allclose(ref_chosen, after_first[0], atol=tol)
    assert torch.allclose(ref_rejected, after_first[1], atol=tol)
    moved = torch.cat([after_first[0] - before[0], after_first[1] - before[1]]).abs()
    assert moved.max() > 0.1  # iteration 1 moved them by far more than `tol`
    if finetune == "lora":  # switching the adapter off would give the base model, not iteration 1
        with policy.disable_adapter():
            base = logps(policy, tokenizer, second)
        assert torch.cat([ref_chosen - base[0], ref_rejected - base[1]]).abs().max() > 0.1


# --- loop -----------------------------------------------------------------------


def test_loop_with_dpo_stores_pairs_and_trains_on_them(tiny_llama, tmp_path):
    config = {
        "name": "dpo",
        "output_dir": str(tmp_path),
        "model": {"name": tiny_llama, "dtype": "float32", "device": "cpu"},
        "tasks": {"train_size": 6, "heldout_size": 4, "prompts_per_iteration": 3},
        "generation": {"samples_per_prompt": 3, "max_new_tokens": 6},
        "judge": {"batch_size": 8},
        "training": {"method": "dpo", "lora_r": 2, "lora_alpha": 4, "batch_size": 4},
        "evaluation": {"max_new_tokens": 6},
        "stopping": {"max_iterations": 1, "patience": 5},
    }
    result = autodidact.run(config)

    assert [row["iteration"] for row in result.iterations] == [0, 1]
    run_dir = tmp_path / "dpo"
    with RunStore(run_dir / STORE_FILE) as store:
        pairs = store.pairs(1)
        assert pairs, "2 tasks x 3 prompts x 3 samples should give at least one pair"
        assert store.counts()["selections"] == 0 and store.counts()["pairs"] == len(pairs)
        assert store.stage_info(1, "select") == {"pairs": len(pairs), "peak_rss_mib": ANY}
        assert store.stage_info(1, "train")["examples"] == len(pairs)
        score = {j.sample_id: j.score for j in store.judgments(1)}
        for pair in pairs:
            assert score[pair.chosen_sample_id] == pair.chosen_score
            assert score[pair.rejected_sample_id] == pair.rejected_score < pair.chosen_score
    assert result.iterations[1]["kept"] == len(pairs)
    checkpoint = run_dir / "checkpoints" / "iter-1"
    assert (checkpoint / "adapter_config.json").is_file()
    assert not (checkpoint / "ref").exists()  # only the policy's adapter is saved
