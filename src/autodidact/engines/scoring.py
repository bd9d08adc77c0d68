"""Teacher-forced log P(continuation | prompt) for many prompts that share long prefixes.

A judge scores "0".."10" after hundreds of prompts that differ in a small
part: every direct-judge prompt starts with the same chat-template head and
instructions, and the samples of one question share the question too; only
the response and the template's tail after it differ. Run whole, every row
pushes all of that through the model. So a block of rows (a few batches,
planned in token order, which makes rows that share a prefix neighbours)
runs in up to three stages on one KV cache (`ScoreOptions.share_prefix`):

1. the prefix every row of the block shares (one row);
2. per group of rows that share more (the samples of one question), the rest
   of their common prefix;
3. per row, the rest: the response, the tail, "Score: " and the appended
   continuation tokens, whose last positions' logits are read. These run in
   batches of rows of similar length, longest first, so they pad little
   although the samples of one question differ in length.

Before stages 2 and 3 the cache rows are gathered for the stage's rows (with
repeated indices). Each stage is left padded, so the cache holds padding
between a row's segments: the attention mask has zeros there and the
position ids count real tokens only, as in `engines.decoding`, so every
token attends to exactly what it does in one unpadded pass.

A multi-token continuation ("10" as "1", "0") is scored by appending all
but its last token to the prompt and reading the logits of the last few
positions: under causal attention the prompt's positions do not see the
appended tokens, so one pass serves every continuation that shares that
appended part (all of "0".."10").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from autodidact.compat.transformers import cache_argument


@dataclass(frozen=True)
class ScoreOptions:
    """How `score_batch` runs a batch (the log-probabilities agree within float rounding either way)."""

    share_prefix: bool = True  # run shared prefixes once; False runs every row whole (the reference path)
    block_batches: int = 4  # with share_prefix: rows of this many batches share one run of their prefixes


@dataclass(frozen=True)
class Stage:
    """One forward pass of a batch: the tokens each node adds, and the node of the previous stage it continues."""

    segments: list[list[int]]
    parents: list[int] | None  # None: the first stage, on an empty cache


def continuation_ids(
    encode: Callable[[str], list[int]], prompt: str, continuations: Sequence[str]
) -> tuple[int, list[list[int]]]:
    """Token ids of each continuation as it is tokenized after `prompt`.

    Returns how many trailing characters to strip from every prompt and the
    ids. Tokenizers that merge a space into the next token (" 7") cannot
    split "Score: " + "7" at the space; we then move the trailing
    whitespace from the prompt into the continuation.
    """
    for strip in (0, len(prompt) - len(prompt.rstrip())):
        base = encode(prompt[: len(prompt) - strip])
        ids = []
        for cont in continuations:
            full = encode(prompt + cont)
            if full[: len(base)] != base or len(full) == len(base):
                break
            ids.append(full[len(base) :])
        else:
            return strip, ids
    raise ValueError(f"cannot tokenize continuations {list(continuations)!r} after the prompt consistently")


def plan_score_batches(encoded: Sequence[list[int]], batch_size: int, options: ScoreOptions) -> list[list[int]]:
    """Prompt indices per block that `score_batch` runs alone (its numbers depend on nothing else).

    Sharing prefixes: blocks of `block_batches` x `batch_size` rows in token order, so rows that share a
    prefix are neighbours. Otherwise: batches of `batch_size`, longest first, so a batch pads little.
    """
    if options.share_prefix:
        order = sorted(range(len(encoded)), key=lambda i: encoded[i])
        batch_size *= options.block_batches
    else:
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def appended_groups(cont_ids: Sequence[list[int]]) -> dict[tuple[int, ...], list[int]]:
    """Continuation indices by the tokens appended to the prompt to score them (all but their last).

    Single-token continuations join the longest group at no cost (their logits are one of its positions).
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for c, tokens in enumerate(cont_ids):
        groups.setdefault(tuple(tokens[:-1]), []).append(c)
    longest = max(groups, key=len)
    if () in groups and longest != ():
        groups[longest] += groups.pop(())
    return groups


@torch.inference_mode()
def score_batch(
    model,
    rows: Sequence[list[int]],
    cont_ids: Sequence[list[int]],
    pad_id: int,
    options: ScoreOptions,
    batch_size: int,
) -> list[list[float]]:
    """log P(continuation | row) for every row (token ids) and continuation: (len(rows), len(cont_ids)).

    At most `batch_size` rows run their own tokens in one forward pass.
    """
    scores = torch.zeros(len(rows), len(cont_ids))
    for extra, members in appended_groups(cont_ids).items():
        full = [list(row) + list(extra) for row in rows]
        keep = len(extra) + 1  # positions whose logits are read
        stages = shared_stages(full, keep) if options.share_prefix else [Stage(full, None)]
        if len(stages) > 1 and _window_too_small(model, stages):
            stages = [Stage(full, None)]
        for chunk, logits in _last_logits(model, stages, keep, pad_id, batch_size):
            logp = torch.log_softmax(logits.float(), dim=-1)  # (chunk, keep, V)
            for c in members:
                tokens = cont_ids[c]
                steps = torch.arange(len(tokens))
                scores[chunk, c] = logp[:, steps, torch.tensor(tokens)].sum(-1).cpu()
    return scores.tolist()


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_stages(rows: Sequence[list[int]], keep: int) -> list[Stage]:
    """Split a batch into the stages of the module docstring; the last stage has one node per row, in row order.

    The last `keep` tokens of a row always run in its own stage (their logits are read). Groups are runs of
    rows in token order; `_best_runs` picks them to save the most tokens.
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    cap = [len(rows[i]) - keep for i in order]  # (B,) tokens of each row that may be shared
    adjacent = [_common(rows[a], rows[b]) for a, b in zip(order, order[1:])]  # (B - 1,)
    root = min(adjacent + cap) if len(rows) > 1 else 0
    stages = [Stage([rows[order[0]][:root]], None)] if root > 0 else []
    runs = _best_runs(adjacent, cap, root)
    # A lone row's tokens fill the group stage's padding for free, up to the widest shared group segment.
    width = max([length - root for start, end, length in runs if end - start > 1], default=0)
    runs = [(start, end, length if end - start > 1 else min(cap[start], root + width)) for start, end, length in runs]
    group_of, shared = [0] * len(rows), [root] * len(rows)
    segments = []
    for g, (start, end, length) in enumerate(runs):
        segments.append(rows[order[start]][root:length])
        for k in range(start, end):
            group_of[order[k]], shared[order[k]] = g, length
    if any(segments):
        stages.append(Stage(segments, [0] * len(runs) if stages else None))
        parents: list[int] | None = group_of
    else:  # no group shares more than the root
        parents = [0] * len(rows) if stages else None
    stages.append(Stage([row[shared[i] :] for i, row in enumerate(rows)], parents))
    return stages


def _best_runs(adjacent: Sequence[int], cap: Sequence[int], root: int) -> list[tuple[int, int, int]]:
    """Partition rows (in token order) into runs (start, end, shared length) that save the most tokens.

    A run of k rows sharing s tokens beyond the root runs them once instead of k times: it saves (k - 1) * s.
    `adjacent[i]` is the common prefix of rows i and i + 1; a run's is the least of its neighbours', at
    most each row's `cap`. Dynamic programming over run ends: O(B x longest run) for a batch of B rows.
    """
    n = len(cap)
    best = [0] * (n + 1)  # best[j]: the most saved by the first j rows
    choice = [(0, root)] * (n + 1)  # (start of the last run, its shared length)
    for end in range(1, n + 1):
        length = cap[end - 1]
        best[end], choice[end] = best[end - 1], (end - 1, root)  # a run of one row shares nothing more
        for start in range(end - 2, -1, -1):
            length = min(length, adjacent[start], cap[start])
            if length <= root:  # longer runs save nothing either, and best[] never decreases
                break
            saved = best[start] + (end - start - 1) * (length - root)
            if saved > best[end]:
                best[end], choice[end] = saved, (start, length)
    runs = []
    end = n
    while end > 0:
        start, length = choice[end]
        runs.append((start, end, length))
        end = start
    return runs[::-1]


def _window_too_small(model, stages: Sequence[Stage]) -> bool:
    """Whether a sliding attention window could cut off a real token behind the padding between stages."""
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "sliding_window", None)
    return bool(window) and sum(max(len(s) for s in stage.segments) for stage in stages) >= window


def _left_pad(segments: Sequence[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in segments)
    ids = torch.full((len(segments), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(segments), width), dtype=torch.long)
    for i, segment in enumerate(segments):
        if segment:
            ids[i, width - len(segment) :] = torch.tensor(segment, dtype=torch.long)
            mask[i, width - len(segment) :] = 1
    return ids.to(device), mask.to(device)


def _last_logits(model, stages: Sequence[Stage], keep: int, pad_id: int, batch_size: int):
    """Yield (row indices, logits of their last `keep` positions (rows, keep, V)); never a (B, T, V) tensor.

    The prefix stages run once; the last stage's rows then run in batches of `batch_size`, longest first
    (a batch pads little), each on its own copy of its rows of the prefix cache.
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    *prefix, last = stages
    cache = None
    mask = torch.zeros((1, 0), dtype=torch.long, device=device)  # (rows, cached width): 1 where a real token is
    lengths = torch.zeros(1, dtype=torch.long, device=device)  # (rows,) real tokens cached
    for stage in prefix:
        if cache is None:
            cache = DynamicCache(config=model.config)
        else:  # in place: the cache rows each node continues, repeated for a group's nodes
            index = torch.tensor(stage.parents, device=device)
            cache.batch_select_indices(index)
            mask, lengths = mask[index], lengths[index]
        mask, lengths = _forward(model, stage.segments, cache, mask, lengths, pad_id, 1)[1:]
    order = sorted(range(len(last.segments)), key=lambda i: -len(last.segments[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        segments = [last.segments[i] for i in chunk]
        if cache is None:
            yield chunk, _forward(model, segments, None, mask, lengths, pad_id, keep)[0]
            continue
        index = torch.tensor([last.parents[i] for i in chunk], device=device)
        rows = DynamicCache(ddp_cache_data=[(k[index], v[index]) for k, v, *_ in cache], config=model.config)
        yield chunk, _forward(model, segments, rows, mask[index], lengths[index], pad_id, keep)[0]


def _forward(model, segments, cache, mask, lengths, pad_id: int, keep: int):
    """Run `segments` after the cached tokens; returns (logits of the last `keep` positions, mask, lengths).

    mask (rows, cached width) has 1 where a real token is cached, lengths (rows,) counts them; each may have
    one row for all. The segments are left padded: padding gets a mask of 0 and no position of its own.
    """
    ids, added = _left_pad(segments, pad_id, mask.device)
    positions = (lengths.unsqueeze(1) + added.cumsum(-1) - 1).clamp(min=0)  # (rows, width)
    mask = torch.cat([mask.expand(len(ids), -1), added], dim=1)
    if cache is None:
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=keep)
    else:
        out = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, **{cache_argument(model): cache}, use_cache=True,
            logits_to_keep=keep,
        )
    return out.logits, mask, lengths + added.sum(-1)
