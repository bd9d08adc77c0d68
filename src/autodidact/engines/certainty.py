"""How sure the model is of its own response: its next-token distributions over the response's tokens.

Self-certainty (Intuitor, "Learning to Reason without External Rewards", arXiv 2505.19590) is, at
each response position i, the KL divergence of the model's next-token distribution p_i from the
uniform distribution U over the vocabulary, averaged over the response:

    KL(U || p_i) = sum_j (1/V) log((1/V) / p_i(j)) = -log V - (1/V) sum_j log p_i(j)

It is 0 for a flat distribution and has no upper bound: a token given almost no probability sends
it up (a distribution on one token in V scores log V only in the other direction, KL(p || U)).
Intuitor's code drops the constant -log V.
The mean log-probability of the response's own tokens comes from the same pass.

Each row is the rendered prompt followed by the response, teacher-forced. Rows are right padded:
under causal attention a real token never sees the padding after it, and positions count from 0 as
in an unpadded pass. Only the positions that predict response tokens get logits (`logits_to_keep`:
the last positions of the batch, from its shortest prompt on), and rows are batched by prompt length,
so the samples of one question share a batch and the (B, K, V) logits cover little beyond responses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from autodidact.engines.base import ResponseCertainty
from autodidact.engines.scoring import continuation_ids
from autodidact.progress import progress_bar

# Logit entries (rows x kept positions x V) one forward pass may return: 2^27 is 256 MB in bf16 (512 MB
# in fp32), e.g. 16 rows of 170 kept positions with the bundled model's 49,152-wide vocabulary. A longer
# response runs alone whatever its size.
MAX_LOGITS = 1 << 27

Row = tuple[list[int], list[int]]  # (prompt ids, response ids)


def response_ids(encode: Callable[[str], list[int]], prompt: str, response: str) -> Row:
    """The prompt's ids and the response's ids after it, split as `continuation_logprobs` splits them."""
    if not response:
        return encode(prompt), []
    try:
        strip, (ids,) = continuation_ids(encode, prompt, [response])
    except ValueError:  # no split of prompt + response keeps the prompt's tokens: the response tokenized alone
        return encode(prompt), encode(response)
    return encode(prompt[: len(prompt) - strip] if strip else prompt), ids


def plan_certainty_batches(
    rows: Sequence[Row], batch_size: int, vocab: int, max_logits: int = MAX_LOGITS
) -> list[list[int]]:
    """Row indices per forward pass: by prompt length, at most `batch_size` rows and `max_logits` logit entries.

    Rows without response tokens are left out (nothing to measure).
    """
    order = sorted((i for i, (_, r) in enumerate(rows) if r), key=lambda i: (len(rows[i][0]), len(rows[i][1])))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else []
        candidate = batch + [i]
        if batch and len(candidate) <= batch_size and len(candidate) * _kept(rows, candidate) * vocab <= max_logits:
            batch.append(i)
        else:
            batches.append([i])
    return batches


def _kept(rows: Sequence[Row], batch: Sequence[int]) -> int:
    """Positions whose logits a batch needs: from its shortest prompt's last token to the end of its widest row."""
    width = max(len(rows[i][0]) + len(rows[i][1]) for i in batch)
    return width - min(len(rows[i][0]) for i in batch) + 1


@torch.inference_mode()
def measure_certainty(
    model, rows: Sequence[Row], pad_id: int | None, batch_size: int, desc: str = "measuring certainty",
    max_logits: int = MAX_LOGITS,
) -> list[ResponseCertainty]:
    """One `ResponseCertainty` per (prompt ids, response ids) row, in order; NaN means for an empty response."""
    vocab = _vocab(model)
    empty = ResponseCertainty(math.nan, math.nan, 0, math.log(vocab))
    results = [empty] * len(rows)
    batches = plan_certainty_batches(rows, batch_size, vocab, max_logits)
    with progress_bar(desc, total=len(rows), unit="samples") as advance:
        advance(len(rows) - sum(len(b) for b in batches))  # the empty responses
        for batch in batches:
            for i, certainty in zip(batch, _batch_certainty(model, [rows[i] for i in batch], pad_id or 0)):
                results[i] = certainty
            advance(len(batch))
    return results


def _vocab(model) -> int:
    """The width of the model's logits (its output embedding rows, which may exceed the tokenizer's vocabulary)."""
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.get_text_config().vocab_size)


def _batch_certainty(model, rows: Sequence[Row], pad_id: int) -> list[ResponseCertainty]:
    device = next(model.parameters()).device
    width = max(len(p) + len(r) for p, r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T), right padded
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T): 1 on real tokens
    for b, (prompt, response) in enumerate(rows):
        ids[b, : len(prompt) + len(response)] = torch.tensor(prompt + response, dtype=torch.long)
        mask[b, : len(prompt) + len(response)] = 1
    keep = _kept(rows, range(len(rows)))
    start = width - keep  # the first kept position: the shortest prompt's last token
    positions = torch.arange(width).expand(len(rows), -1)  # (B, T): as in an unpadded pass
    logits = model(
        input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
        use_cache=False, logits_to_keep=keep,
    ).logits  # (B, keep, V)
    out = []
    for b, (prompt, response) in enumerate(rows):
        first = len(prompt) - 1 - start  # kept index of the position that predicts the first response token
        logp = torch.log_softmax(logits[b, first : first + len(response)].float(), dim=-1)  # (R, V)
        log_vocab = math.log(logp.shape[-1])
        kl = -log_vocab - logp.mean(dim=-1)  # (R,) KL(U || p_i)
        token_logp = logp.gather(-1, torch.tensor(response, device=logp.device).unsqueeze(-1)).squeeze(-1)  # (R,)
        out.append(ResponseCertainty(kl.mean().item(), token_logp.mean().item(), len(response), log_vocab))
    return out


__all__ = ["MAX_LOGITS", "measure_certainty", "plan_certainty_batches", "response_ids"]
