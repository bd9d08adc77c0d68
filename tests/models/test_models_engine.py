"""Model resolution and the transformers engine, on tiny random models of four families."""

from __future__ import annotations

import json

import pytest
import torch

from autodidact.engines import SamplingParams, Sleeps, TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.models import load_model, resolve_model
from tiny_models import FAMILIES

MESSAGES = [[{"role": "user", "content": "What is 2 + 3?"}], [{"role": "user", "content": "Rate the answer please."}]]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_generates_n_samples_and_scores(tiny_model_dirs, family):
    model, tokenizer = load_model(tiny_model_dirs[family], dtype="float32", device="cpu")
    engine = TransformersEngine(model, tokenizer, batch_size=4)
    prompts = [engine.render(m) for m in MESSAGES]
    out = engine.generate(prompts, SamplingParams(n=3, temperature=1.0, max_new_tokens=5, seed=1))
    assert [len(x) for x in out] == [3, 3]
    assert all(0 <= c.num_tokens <= 5 for x in out for c in x)
    table = engine.continuation_logprobs([p + "Score: " for p in prompts], ["3", "7", "10"])
    assert len(table) == 2 and all(len(row) == 3 for row in table)
    assert all(lp < 0 for row in table for lp in row)


def _brute_force_logprob(model, tokenizer, prompt: str, continuation: str) -> float:
    """log P(continuation | prompt) by one unpadded forward over the whole text.

    Where the tokenizer merges the prompt's trailing space into the next token
    (" 7"), the split moves before the space, as the engine does.
    """
    p_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    full = tokenizer(prompt + continuation, add_special_tokens=False).input_ids
    if full[: len(p_ids)] != p_ids:
        p_ids = tokenizer(prompt.rstrip(), add_special_tokens=False).input_ids
    assert full[: len(p_ids)] == p_ids
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return sum(float(logp[i - 1, full[i]]) for i in range(len(p_ids), len(full)))


def test_continuation_logprobs_match_brute_force_with_padding_and_multi_token(tiny_engine):
    engine = tiny_engine
    # Prompts of different lengths force left padding; "10" and "answer" are multi-token.
    prompts = [engine.render(m) + "Score: " for m in MESSAGES] + [engine.render([{"role": "user", "content": "x"}]) + "Score: "]
    continuations = ["0", "1", "7", "10", "answer"]
    assert any(len(engine.tokenizer(c, add_special_tokens=False).input_ids) > 1 for c in continuations)
    table = engine.continuation_logprobs(prompts, continuations)
    for p, row in zip(prompts, table):
        for c, lp in zip(continuations, row):
            assert lp == pytest.approx(_brute_force_logprob(engine.model, engine.tokenizer, p, c), abs=1e-4)


def test_generation_is_reproducible_for_a_seed_and_batching_keeps_prompt_order(tiny_engine):
    prompts = [tiny_engine.render(m) for m in MESSAGES]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3)
    a = tiny_engine.generate(prompts, params)
    b = tiny_engine.generate(prompts, params)
    assert a == b
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)
    together = tiny_engine.generate(prompts, greedy)
    alone = [tiny_engine.generate([p], greedy)[0] for p in prompts]
    assert together == alone  # left padding does not change greedy answers, order is kept


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(AutodidactError, match="not 'default', a model directory"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(AutodidactError, match="GGUF file .* not found"):
        resolve_model(str(tmp_path / "nope.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutodidactError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_corrupt_model_is_a_one_line_error(tmp_path, tiny_llama, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": "x"}))
    with pytest.raises(AutodidactError) as err:
        load_model(str(bad))
    assert "could not load" in str(err.value) and "\n" not in str(err.value)
    truncated = tmp_path / "broken.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)
    monkeypatch.setenv("AUTODIDACT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AutodidactError, match="could not read GGUF"):
        resolve_model(str(truncated))


def test_lora_policy_runs_through_a_merged_copy_that_follows_training(tiny_llama):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    policy = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in policy.named_parameters():  # non-zero adapters, so merging matters
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    merged_engine = TransformersEngine(policy, tokenizer, merge_adapters="auto")
    plain_engine = TransformersEngine(policy, tokenizer, merge_adapters=False)
    assert merged_engine.merge_adapters and not plain_engine.merge_adapters
    prompts = [merged_engine.render(m) + "Score: " for m in MESSAGES]
    def table(engine):
        return torch.tensor(engine.continuation_logprobs(prompts, ["3", "7"]))

    merged = table(merged_engine)
    assert torch.allclose(merged, table(plain_engine), atol=1e-4)
    assert merged_engine.inference_model() is merged_engine.inference_model()  # built once while weights stay
    assert any("lora_" in n for n, _ in policy.named_parameters())  # the live policy keeps its adapters

    with torch.no_grad():  # what an optimizer step does: in-place updates of the adapter weights
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
    updated = table(merged_engine)
    assert not torch.allclose(updated, merged, atol=1e-3)
    assert torch.allclose(updated, table(plain_engine), atol=1e-4)

    # While the trainer runs, the engine sleeps: the copy is freed, and the next request builds it anew.
    assert isinstance(merged_engine, Sleeps)
    before = merged_engine.inference_model()
    merged_engine.sleep()
    assert merged_engine._merged is None
    assert merged_engine.inference_model() is not before and torch.allclose(table(merged_engine), updated, atol=1e-6)


def test_a_shard_of_whole_batches_reproduces_the_whole_request(tiny_engine):
    """What Ray shards rely on (autodidact.distributed): a run of the request's batches, alone, gives the same rows."""
    prompts = [tiny_engine.render([{"role": "user", "content": f"What is {i} + 1? " + "ok " * (i % 3)}]) for i in range(9)]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=4)
    whole = tiny_engine.generate(prompts, params)
    batches = tiny_engine.generation_batches(prompts, params)
    assert len(batches) > 1
    shard = batches[1:]  # every batch but the first, as one shard
    indices = [i for b in shard for i in b]
    local = [[indices.index(i) for i in b] for b in shard]
    alone = tiny_engine.generate([prompts[i] for i in indices], params, batches=local)
    assert alone == [whole[i] for i in indices]

    scores = ["1", "10"]
    whole_scores = tiny_engine.continuation_logprobs(prompts, scores)
    chunks = tiny_engine.scoring_batches(prompts, scores)[1:]
    indices = [i for b in chunks for i in b]
    local = [[indices.index(i) for i in b] for b in chunks]
    sub = tiny_engine.continuation_logprobs([prompts[i] for i in indices], scores, batches=local, reference=prompts[0])
    assert sub == [whole_scores[i] for i in indices]
    with pytest.raises(ValueError, match="exactly once"):
        tiny_engine.generate(prompts[:2], params, batches=[[0], [0]])
