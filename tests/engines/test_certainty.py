"""Self-certainty from the engine: batched, padded rows give exactly what one unpadded pass gives."""

from __future__ import annotations

import math

import pytest
import torch

from autodidact.engines import CountsTokens, MeasuresCertainty, TokenCounter
from autodidact.engines.certainty import plan_certainty_batches

QUESTIONS = ["What is 2 + 3?", "What is the answer score of the final number?"]
# Three samples of each question, of different lengths, so batches mix prompt and response lengths.
RESPONSES = [
    ["5", "The answer is 5.", "plus minus times number 12"],
    ["score rate response", "7", "the final answer is the number 42"],
]


def _rows(engine):
    prompts = [engine.render([{"role": "user", "content": q}]) for q in QUESTIONS]
    return [(p, r) for p, rs in zip(prompts, RESPONSES) for r in rs]


def _direct(model, encode, prompt: str, response: str) -> tuple[float, float, int]:
    """(mean KL(U || p_i), mean token log-prob, tokens) from one unpadded forward pass over prompt + response."""
    start = len(encode(prompt))
    ids = encode(prompt + response)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()  # (T, V)
    logp = torch.log_softmax(logits, dim=-1)[start - 1 : len(ids) - 1]  # (R, V): the positions predicting the response
    kl = -math.log(logp.shape[-1]) - logp.mean(dim=-1)  # (R,)
    token_logp = logp.gather(-1, torch.tensor(ids[start:]).unsqueeze(-1)).squeeze(-1)
    return kl.mean().item(), token_logp.mean().item(), len(ids) - start


def test_kl_and_mean_logprob_equal_a_direct_computation(tiny_engine):
    rows = _rows(tiny_engine)
    measured = tiny_engine.response_certainty([p for p, _ in rows], [r for _, r in rows])  # batches of <= 4 rows
    assert len(measured) == 6
    for (prompt, response), m in zip(rows, measured):
        kl, mean_logp, tokens = _direct(tiny_engine.model, tiny_engine._encode, prompt, response)
        assert m.tokens == tokens > 0
        assert m.kl_uniform == pytest.approx(kl, abs=1e-5)
        assert m.mean_logprob == pytest.approx(mean_logp, abs=1e-5)
        assert m.log_vocab == pytest.approx(math.log(tiny_engine.model.config.vocab_size))
        # The same teacher-forced log-probability as the judges' scoring path, per token.
        total = tiny_engine.continuation_logprobs([prompt], [response])[0][0]
        assert m.mean_logprob == pytest.approx(total / m.tokens, abs=1e-5)


def test_an_empty_response_is_not_measured(tiny_engine):
    prompt = tiny_engine.render([{"role": "user", "content": QUESTIONS[0]}])
    empty, full = tiny_engine.response_certainty([prompt, prompt], ["", "5"])
    assert empty.tokens == 0 and math.isnan(empty.kl_uniform) and math.isnan(empty.mean_logprob)
    assert full.tokens == 1 and full.kl_uniform > 0


def test_batches_respect_the_row_and_logit_caps():
    rows = [([1] * 10, [2] * 5), ([1] * 12, [2] * 3), ([1] * 10, [2] * 2), ([1] * 10, []), ([1] * 30, [2] * 40)]
    # Sorted by prompt length; the empty response is left out; a batch keeps (widest row - shortest prompt + 1)
    # positions: rows 2 and 0 keep 6, with row 1 too 6 (15 - 10 + 1); row 4 widens any batch to 61 or more.
    assert plan_certainty_batches(rows, batch_size=2, vocab=10) == [[2, 0], [1, 4]]
    assert plan_certainty_batches(rows, batch_size=8, vocab=10, max_logits=3 * 6 * 10) == [[2, 0, 1], [4]]
    assert plan_certainty_batches(rows, batch_size=8, vocab=10, max_logits=2 * 6 * 10) == [[2, 0], [1], [4]]


def test_the_in_process_engine_and_its_counting_wrapper_have_the_capabilities(tiny_engine):
    assert isinstance(tiny_engine, MeasuresCertainty) and isinstance(tiny_engine, CountsTokens)
    assert isinstance(TokenCounter(tiny_engine), MeasuresCertainty)  # the loop hands judges a TokenCounter
    assert tiny_engine.count_tokens("What is 2 + 3?") == len(tiny_engine._encode("What is 2 + 3?"))
