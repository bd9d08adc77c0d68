"""The fast decoding path must give exactly what the plain path gives, and sample correctly."""

from __future__ import annotations

import pytest
import torch

from autodidact.engines.decoding import DecodeOptions, NucleusSampler, decode, plan_batches, sequence_seed
from autodidact.models import load_model
from tiny_models import FAMILIES


def _prompts(tokenizer) -> list[list[int]]:
    texts = ["What is 2 + 3?", "Rate the answer please.", "x", "Write one short sentence about the sea and the sky."]
    return [tokenizer(t, add_special_tokens=False).input_ids for t in texts]


def _frequent_tokens(model, prompts, k=12) -> list[int]:
    """Tokens the random model emits often: used as stop tokens so sequences end at different steps."""
    with torch.no_grad():
        logits = model(torch.tensor([prompts[0]])).logits[0]
    return logits.float().softmax(-1).mean(0).topk(k).indices.tolist()


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_equals_plain_path_in_fp32(tiny_model_dirs, family):
    model, tokenizer = load_model(tiny_model_dirs[family], dtype="float32", device="cpu")
    prompts = _prompts(tokenizer)
    stop = _frequent_tokens(model, prompts)
    sampler = NucleusSampler(temperature=0.9, top_p=0.9)
    args = dict(n=3, sampler=sampler, seed=7, max_new_tokens=10, stop_ids=stop, pad_id=tokenizer.pad_token_id)
    fast = decode(model, prompts, options=DecodeOptions(max_sequences=64), **args)
    plain = decode(model, prompts, options=DecodeOptions(share_prefix=False, compact=False), **args)
    assert fast == plain
    lengths = [len(t) for per_prompt in fast for t in per_prompt]
    assert min(lengths) < 10 and max(lengths) == 10  # some stopped early (compaction ran), some ran to the limit
    assert all(tok not in stop for per_prompt in fast for t in per_prompt for tok in t)
    assert len({tuple(t) for t in fast[3]}) > 1  # the n samples of a prompt differ


def test_a_prompts_samples_do_not_depend_on_its_batch_mates(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    prompts = _prompts(tokenizer)
    args = dict(n=2, sampler=NucleusSampler(1.0, 0.95), seed=3, max_new_tokens=8, stop_ids=[tokenizer.eos_token_id], pad_id=0)
    together = decode(model, prompts, **args)
    small_batches = decode(model, prompts, options=DecodeOptions(max_sequences=2), **args)
    alone = decode(model, prompts[2:3], **args)
    assert together == small_batches
    assert together[2] == alone[0]
    other_seed = decode(model, prompts, **(args | {"seed": 4}))
    assert other_seed != together


def test_greedy_is_argmax_and_tiny_top_p_keeps_only_the_top_token():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.9], [5.0, 0.0, 0.0, 0.0]])
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    assert NucleusSampler(0.0, 1.0)(logits, gens).tolist() == [1, 0]
    for _ in range(20):
        assert NucleusSampler(1.0, 1e-6)(logits, gens).tolist() == [1, 0]


def _frequencies(logits: torch.Tensor, top_p: float, draws: int, temperature: float = 1.0) -> torch.Tensor:
    sampler = NucleusSampler(temperature, top_p)
    gens = [torch.Generator().manual_seed(sequence_seed(0, [i], 0)) for i in range(draws)]
    tokens = sampler(logits.expand(draws, -1), gens)
    return torch.bincount(tokens, minlength=logits.shape[-1]).float() / draws


def test_samples_follow_the_renormalised_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    freq = _frequencies(probs.log(), top_p=0.9, draws=20000)  # nucleus {0, 1, 2}: 0.5 + 0.3 < 0.9 <= 0.95
    expected = torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95
    assert torch.allclose(freq, expected, atol=0.015)
    assert freq[3] == 0


def test_nucleus_larger_than_the_candidate_set_falls_back_to_the_full_sort():
    vocab = 1000
    logits = torch.zeros(vocab)
    logits[:10] = -0.01  # nearly flat: the 0.5 nucleus holds ~500 tokens, far more than 64
    freq = _frequencies(logits, top_p=0.5, draws=4000)
    used = (freq > 0).nonzero().flatten()
    assert len(used) > 200  # the draws spread over the whole nucleus, not only the top 64
    assert used.max() < vocab  # and are valid ids


def test_plan_batches_respects_sequence_and_memory_caps(tiny_llama):
    model, _ = load_model(tiny_llama, dtype="float32", device="cpu")
    lengths = [5, 50, 20, 7, 30]
    batches = plan_batches(lengths, n=4, max_new_tokens=10, model=model, options=DecodeOptions(max_sequences=8))
    assert batches == [[1, 4], [2, 3], [0]]  # longest first, 2 prompts x 4 samples per batch
    per_token = 2 * 2 * 2 * 8 * 4  # k+v x layers x kv heads x head dim x fp32 bytes
    tight = DecodeOptions(max_sequences=64, max_cache_bytes=4 * 60 * per_token)  # one 50-token prompt's 4 samples
    assert plan_batches(lengths, 4, 10, model, tight)[0] == [1]
