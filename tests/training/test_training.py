"""SFT through TRL: parameters change, the engine sees them without a reload."""

from __future__ import annotations

import pytest
import torch

from autodidact.config import TrainingConfig
from autodidact.engines import SamplingParams, TransformersEngine
from autodidact.models import load_model
from autodidact.records import SFTExample
from autodidact.training import prepare_policy, save_checkpoint, train_sft

EXAMPLES = [
    SFTExample(f"s{i}", f"p{i}", [{"role": "user", "content": f"What is {i} + 1?"}], f"The answer is {i + 1}.", 9.0)
    for i in range(8)
]


def _snapshot(model, trainable: bool):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad == trainable}


def test_lora_sft_changes_every_adapter_weight_and_no_base_weight(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = prepare_policy(model, TrainingConfig(lora_r=4, lora_alpha=8, learning_rate=1e-2, batch_size=4))
    adapters, base = _snapshot(policy, True), _snapshot(policy, False)
    assert adapters and all("lora_" in n for n in adapters)
    engine = TransformersEngine(policy, tokenizer)
    prompt = [engine.render(EXAMPLES[0].messages)]
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    before = engine.generate(prompt, greedy)

    result = train_sft(policy, tokenizer, EXAMPLES, TrainingConfig(lora_r=4, lora_alpha=8, learning_rate=1e-2, batch_size=4), seed=0)

    assert result.examples == 8 and result.steps == 2 and result.tokens > 0 and result.loss > 0
    # lora_B starts at zero, so after two steps every adapter matrix must have moved.
    assert all(not torch.equal(adapters[n], p) for n, p in policy.named_parameters() if n in adapters)
    assert all(torch.equal(base[n], p) for n, p in policy.named_parameters() if n in base)
    # The engine shares the live weights: it generates with the trained adapter, no reload.
    assert engine.generate(prompt, greedy) != before


def test_full_finetune_changes_base_weights(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    cfg = TrainingConfig(finetune="full", learning_rate=1e-3, batch_size=8)
    policy = prepare_policy(model, cfg)
    before = _snapshot(policy, True)
    train_sft(policy, tokenizer, EXAMPLES, cfg, seed=0)
    changed = [n for n, p in policy.named_parameters() if not torch.equal(before[n], p)]
    assert len(changed) == len(before)


def test_loss_falls_on_the_response_only(tiny_llama):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    # The same data form train_sft builds: conversational prompt-completion.
    ex = EXAMPLES[0]
    row = {"prompt": ex.messages, "completion": [{"role": "assistant", "content": ex.completion}]}
    args = SFTConfig(output_dir="/tmp/unused-sft", completion_only_loss=True, report_to="none", use_cpu=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([row]), processing_class=tokenizer)
    item = trainer.train_dataset[0]
    collated = trainer.data_collator([item])
    labels = collated["labels"][0]
    trained = tokenizer.decode([t for t in labels.tolist() if t != -100])
    assert trained.startswith(ex.completion)
    assert "What is" not in trained


def test_empty_selection_trains_nothing(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = prepare_policy(model, TrainingConfig())
    assert train_sft(policy, tokenizer, [], TrainingConfig(), seed=0).steps == 0


def test_checkpoint_is_written_under_a_temporary_name_then_renamed(tiny_llama, tmp_path):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = prepare_policy(model, TrainingConfig(lora_r=2))
    path = save_checkpoint(policy, tokenizer, tmp_path / "iter-1")
    assert (path / "adapter_config.json").is_file() and not (tmp_path / "iter-1.tmp").exists()
    again = save_checkpoint(policy, tokenizer, tmp_path / "iter-1")  # redo after a kill between rename and commit
    assert again == path and (path / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("bad", [0, -1])
def test_training_config_rejects_bad_sizes(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainingConfig(batch_size=bad)
