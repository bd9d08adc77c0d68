"""The engine's hot loop: many prompts x n samples, decoded together.

Self-improvement asks for a few hundred short samples at a time, and on a
CPU `model.generate` spends most of that time on work a batch of samples
does not need. Measured on the bundled model, 256 sequences in bf16 (see
benchmarks/bench_speed.py): top-p over the whole vocabulary (a sort of
256 x 49k logits, then multinomial) cost 2.6x the forward pass, and the
dynamic cache's per-step `torch.cat` was half of the forward. So this loop:

1. prefills each prompt once and repeats its cache for its n samples
   (`generate` with `num_return_sequences` prefills every copy);
2. writes keys and values into a preallocated `StaticCache` (no copies);
3. retires finished sequences, compacting the batch, instead of decoding
   padding until the longest sample ends;
4. finds the nucleus among the top-64 tokens (exact: it falls back to the
   full sort for a row whose nucleus is larger) and samples it with an
   exponential race driven by a per-sequence generator.

Point 4 is also what makes results independent of batching: sequence k of
a prompt draws its random numbers from a generator seeded by (seed, prompt
tokens, k), so the same seed gives the same samples whether a prompt is
decoded alone or among 255 others (`tests/test_decoding.py` checks this
against the plain path: one sequence at a time, nothing shared). The logits
themselves can still move in the last bits with a batch's padding width (in
bf16 more than fp32), which may flip a near-tie; a caller that must match
another run exactly (a Ray shard, `autodidact.distributed`) therefore passes
that run's `batches` to `decode` instead of planning its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from autodidact.compat.transformers import cache_argument, repeat_cache_rows, select_cache_rows

# The nucleus is looked for among this many top tokens first; rows whose
# nucleus is larger fall back to sorting the whole vocabulary.
TOP_CANDIDATES = 64


@dataclass(frozen=True)
class DecodeOptions:
    """How `decode` batches work (results do not depend on these)."""

    max_sequences: int = 256  # sequences decoded together
    share_prefix: bool = True  # prefill a prompt once for its n samples
    compact: bool = True  # drop finished sequences from the batch
    max_cache_bytes: int = 2 << 30  # cap on the KV cache of one batch


def sequence_seed(seed: int, prompt_ids: Sequence[int], index: int) -> int:
    """The seed of sample `index` of a prompt: a function of content, not of batch position."""
    digest = hashlib.blake2b(repr((seed, tuple(prompt_ids), index)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class NucleusSampler:
    """Temperature + top-p sampling, one generator per sequence.

    `temperature == 0` is greedy. Every row draws exactly as many random
    numbers as its candidate set has tokens (64, or the vocabulary when the
    nucleus is larger), so a row's draws depend on its own logits only.
    """

    def __init__(self, temperature: float, top_p: float):
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, logits: torch.Tensor, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
        """One next token per row of `logits` (B, V)."""
        if self.temperature <= 0:
            return logits.argmax(-1)
        logits = logits.float() / self.temperature
        logz = torch.logsumexp(logits, dim=-1, keepdim=True)
        k = min(TOP_CANDIDATES, logits.shape[-1])
        top_logits, top_ids = logits.topk(k, dim=-1)  # sorted, best first
        top_logp = top_logits - logz
        covered = top_logp.exp().sum(-1) >= self.top_p
        tokens = torch.empty(len(logits), dtype=torch.long)
        rows = covered.nonzero().flatten().tolist()
        if rows:
            picked = self._race(top_logp[rows], [generators[r] for r in rows])
            tokens[rows] = top_ids[rows].gather(1, picked.unsqueeze(1)).squeeze(1).cpu()
        for r in (~covered).nonzero().flatten().tolist():  # rare: a flat distribution
            logp, ids = (logits[r] - logz[r]).sort(descending=True)
            tokens[r] = ids[self._race(logp.unsqueeze(0), [generators[r]])[0]]
        return tokens.to(logits.device)

    def _race(self, logp: torch.Tensor, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
        """Sample within each row's nucleus: argmax of log p - log E, E ~ Exp(1) (exactly p-proportional)."""
        before = logp.exp().cumsum(-1) - logp.exp()  # mass ranked above each token
        inside = before < self.top_p  # the nucleus, always at least the top token
        noise = torch.stack([torch.empty(logp.shape[1]).exponential_(generator=g) for g in generators])
        race = (logp.cpu() - noise.log()).masked_fill(~inside.cpu(), float("-inf"))
        return race.argmax(-1).to(logp.device)


def _generator(seed: int, prompt_ids: Sequence[int], index: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(sequence_seed(seed, prompt_ids, index))
    return g


def _cache_bytes_per_token(model) -> int:
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    dtype = next(model.parameters()).dtype
    return 2 * cfg.num_hidden_layers * kv_heads * head_dim * torch.finfo(dtype).bits // 8


def plan_batches(lengths: Sequence[int], n: int, max_new_tokens: int, model, options: DecodeOptions) -> list[list[int]]:
    """Prompt indices per batch: longest first, so each batch pads little and the peak comes first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    per_token = _cache_bytes_per_token(model)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # the first is the longest
        sequences = (len(current) + 1) * n
        memory = sequences * (width + max_new_tokens) * per_token
        if current and (sequences > max(options.max_sequences, n) or memory > options.max_cache_bytes):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def decode(
    model,
    prompts: Sequence[Sequence[int]],
    n: int,
    sampler: NucleusSampler,
    seed: int,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    options: DecodeOptions = DecodeOptions(),
    on_progress: Callable[[int], None] | None = None,
    batches: Sequence[Sequence[int]] | None = None,
) -> list[list[list[int]]]:
    """Token ids of `n` samples per prompt (stop token excluded), in prompt order.

    `batches` (prompt indices per batch, every prompt once) replaces `plan_batches`:
    a shard of a larger request passes the batches that request planned, so each
    batch runs with the same rows and padding, and gives the same numbers, as there.
    """
    results: list[list[list[int]]] = [[] for _ in prompts]
    if not options.share_prefix:  # the plain path: every sample is its own prompt
        for i, prompt in enumerate(prompts):
            for k in range(n):
                gens = [_generator(seed, prompt, k)]
                results[i] += _decode_batch(model, [prompt], 1, sampler, gens, max_new_tokens, stop_ids, pad_id, options)
                if on_progress:
                    on_progress(1)
        return results
    if batches is None:
        batches = plan_batches([len(p) for p in prompts], n, max_new_tokens, model, options)
    elif sorted(i for b in batches for i in b) != list(range(len(prompts))):
        raise ValueError("batches must hold every prompt index exactly once")
    for batch in batches:
        gens = [_generator(seed, prompts[i], k) for i in batch for k in range(n)]
        rows = _decode_batch(model, [prompts[i] for i in batch], n, sampler, gens, max_new_tokens, stop_ids, pad_id, options)
        for j, i in enumerate(batch):
            results[i] = rows[j * n : (j + 1) * n]
        if on_progress:
            on_progress(len(batch) * n)
    return results


def _decode_batch(model, prompts, n, sampler, generators, max_new_tokens, stop_ids, pad_id, options):
    """Decode `n` samples of each prompt in one batch; returns len(prompts) * n token lists.

    `generators` holds one generator per sequence, prompt-major.
    """
    from transformers import StaticCache

    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    total = width + max_new_tokens
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), total), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p) : width] = 1
    positions = (mask[:, :width].cumsum(-1) - 1).clamp(min=0)
    lengths = mask.sum(-1)
    ids, mask, positions, lengths = ids.to(device), mask.to(device), positions.to(device), lengths.to(device)

    cache = StaticCache(config=model.config, max_cache_len=total)
    cached = {cache_argument(model): cache}
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **cached, use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1]
    if n > 1:  # one prefill per prompt, shared by its samples
        repeat_cache_rows(cache, n)
        logits = logits.repeat_interleave(n, dim=0)
        mask = mask.repeat_interleave(n, dim=0)
        lengths = lengths.repeat_interleave(n, dim=0)

    stop = torch.tensor(sorted(set(stop_ids)), device=device)
    tokens: list[list[int]] = [[] for _ in range(len(generators))]
    active = list(range(len(generators)))  # row in the batch -> sequence
    done = torch.zeros(len(active), dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        nxt = sampler(logits, [generators[s] for s in active])
        finished_now = torch.isin(nxt, stop) | done
        for row, token in enumerate(nxt.tolist()):
            if not finished_now[row]:
                tokens[active[row]].append(token)
        done = finished_now
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        if options.compact and int(done.sum()) * 8 >= len(active):  # compaction copies the cache: not every step
            keep = (~done).nonzero().flatten()
            select_cache_rows(cache, keep)
            active = [active[i] for i in keep.tolist()]
            nxt, mask, lengths, done = nxt[keep], mask[keep], lengths[keep], done[keep]
        slot = width + step
        mask[:, slot] = 1
        out = model(
            input_ids=nxt.unsqueeze(1),
            attention_mask=mask,
            position_ids=(lengths + step).unsqueeze(1),
            **cached,
            use_cache=True,
        )
        logits = out.logits[:, -1]
    return tokens
