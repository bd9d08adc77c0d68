"""The fast SFT path (padding-free batches, LM head on labelled positions only) trains exactly like the padded one."""

from __future__ import annotations

import pytest
import torch

from autodidact.config import TrainingConfig
from autodidact.models import load_model
from autodidact.records import SFTExample
from autodidact.training import prepare_policy, train_sft

# Lengths differ (1 to 3-digit numbers, short and long answers), so padded batches do pad.
EXAMPLES = [
    SFTExample(f"s{i}", f"p{i}", [{"role": "user", "content": f"What is {i * 37} + {i}?" + " Think." * (i % 3)}],
               f"The answer is {i * 38}." + " Yes." * (i % 4), 9.0)
    for i in range(10)
]


def _packed_and_padded(tokenizer, examples):
    """TRL's collator on the same tokenized examples: padded (batch, longest) and padding-free (1, tokens)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = []
    for ex in examples:
        prompt = tokenizer.apply_chat_template(ex.messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(prompt + ex.completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        rows.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(rows)
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    return padded, packed


def _per_token_nll(model, batch):
    """(labelled tokens,) negative log-likelihoods of `batch`, in order, with gradients."""
    keys = ("input_ids", "attention_mask", "position_ids")
    # use_cache=False, as in training: with a cache, transformers ignores the packing in position ids.
    logits = model(**{k: batch[k] for k in keys if k in batch}, use_cache=False).logits[:, :-1]  # (batch, seq - 1, vocab)
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    return torch.nn.functional.cross_entropy(logits[mask].float(), labels[mask], reduction="none")


def test_a_packed_batch_scores_every_token_as_the_padded_batch_does(tiny_llama):
    # No example attends to another: every token's loss, and the gradient of their sum, match the padded batch.
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    assert model.config._attn_implementation == "sdpa"
    padded, packed = _packed_and_padded(tokenizer, EXAMPLES)
    assert packed["input_ids"].shape == (1, int(padded["attention_mask"].sum()))  # no padding left
    assert packed["input_ids"].shape[1] < padded["input_ids"].numel()

    grads = []
    for batch in (padded, packed):
        model.zero_grad()
        nll = _per_token_nll(model, batch)
        nll.sum().backward()
        grads.append((nll.detach(), [p.grad.clone() for p in model.parameters()]))
    (nll_padded, g_padded), (nll_packed, g_packed) = grads
    assert nll_packed.shape == nll_padded.shape and nll_padded.numel() > 50
    torch.testing.assert_close(nll_packed, nll_padded, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_packed, g_padded):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    # And the packing matters: without its position ids, the one row is one causal sequence and the scores differ.
    no_positions = {k: v for k, v in packed.items() if k != "position_ids"}
    assert not torch.allclose(_per_token_nll(model, no_positions).detach(), nll_padded, rtol=1e-3)


@pytest.mark.parametrize(
    ("family", "finetune"), [("llama", "lora"), ("llama", "full"), ("mistral", "lora"), ("qwen2", "lora"), ("gemma", "lora")]
)
def test_fast_sft_trains_the_same_weights_as_the_padded_path(tiny_model_dirs, family, finetune):
    config = TrainingConfig(finetune=finetune, lora_r=4, lora_alpha=8, learning_rate=1e-2, batch_size=4, epochs=2)
    results, weights = [], []
    for fast in (False, True):
        model, tokenizer = load_model(tiny_model_dirs[family], dtype="float32", device="cpu")
        policy = prepare_policy(model, config, seed=0)
        head_rows = []  # the LM head's input: (K labelled positions, hidden) on the fast path, not a fallback
        hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: head_rows.append(args[0].shape))
        results.append(train_sft(policy, tokenizer, EXAMPLES, config, seed=0, padding_free=fast, labelled_head=fast))
        hook.remove()
        assert all(len(shape) == (2 if fast else 3) for shape in head_rows) and head_rows
        weights.append({n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad})
    slow, fast = results
    assert (fast.examples, fast.steps, fast.tokens) == (slow.examples, slow.steps, slow.tokens) == (10, 6, slow.tokens)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-5)
    assert weights[0].keys() == weights[1].keys() and len(weights[0]) > 0
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6, msg=name)
