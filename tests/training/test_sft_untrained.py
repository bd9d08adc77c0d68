"""Spans of a completion marked `untrained` (search results) carry no loss; the rest trains as TRL would."""

from __future__ import annotations

import torch

from autodidact.config import TrainingConfig
from autodidact.models import load_model
from autodidact.records import SFTExample
from autodidact.training import prepare_policy, train_sft
from autodidact.training.sft import masked_rows

RESULTS = "\n<results>\n[1] The tank held 38 pounds.\n</results>\n"
TEXT = "<search>water</search>" + RESULTS + "38 pounds."


def _example(untrained=()) -> SFTExample:
    return SFTExample("s", "p", [{"role": "user", "content": "How much water?"}], TEXT, 9.0, tuple(untrained))


def test_masked_rows_keep_the_untrained_span_out_and_match_trls_tokens(tiny_llama):
    _, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    start = TEXT.index(RESULTS)
    (row,) = masked_rows(tokenizer, [_example([(start, start + len(RESULTS))])])
    prompt = tokenizer.apply_chat_template(_example().messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        _example().messages + [{"role": "assistant", "content": TEXT}], tokenize=False
    )
    assert row["input_ids"] == tokenizer(full, add_special_tokens=False)["input_ids"]  # TRL's own tokenization
    trained = tokenizer.decode([t for t, m in zip(row["input_ids"], row["completion_mask"], strict=True) if m])
    assert trained == "<search>water</search>38 pounds." + full[len(prompt) + len(TEXT) :]
    (plain,) = masked_rows(tokenizer, [_example()])
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert plain["completion_mask"] == [0] * n_prompt + [1] * (len(plain["input_ids"]) - n_prompt)


def test_training_with_untrained_spans_updates_the_adapter(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = TrainingConfig(lora_r=2, lora_alpha=4, batch_size=2, epochs=1, learning_rate=1e-2)
    policy = prepare_policy(model, config)
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    start = TEXT.index(RESULTS)
    examples = [_example([(start, start + len(RESULTS))]), _example()]
    result = train_sft(policy, tokenizer, examples, config, seed=0)
    assert result.steps == 1
    changed = [n for n, p in policy.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed
