"""From samples and judgments to training examples: SFT examples or preference pairs.

Failed judgments (score None) never reach training; empty responses and exact
duplicates (same prompt, same text) are dropped before ranking so a repeated
answer cannot take several top-k slots, nor be paired against itself.
Critique-and-revise rewrites join the SFT examples unscored (`revision_examples`).

Two mitigations of known failure modes live here. Length control
(`length_band`) counters a judge that rewards length: among the samples
scoring within a band of a prompt's best, the shortest go first (as
Meta-Rewarding does). Near-duplicate removal (`drop_near_duplicates`)
counters mode collapse: responses that say the same thing in nearly the same
words are trained on once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from autodidact.embeddings import Embedder, near_duplicates
from autodidact.records import Judgment, PreferencePair, Prompt, Sample, SFTExample


def scored_candidates(
    samples: Sequence[Sample], judgments: Sequence[Judgment]
) -> dict[str, list[tuple[Sample, float]]]:
    """Per prompt id: (sample, score) for valid, non-empty, distinct samples, best first.

    Ties keep generation order, so selection is deterministic.
    """
    score_of = {j.sample_id: j.score for j in judgments if j.score is not None}
    by_prompt: dict[str, list[tuple[Sample, float]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for sample in samples:
        text = sample.text.strip()
        key = (sample.prompt_id, text)
        if sample.id not in score_of or not text or key in seen:
            continue
        seen.add(key)
        by_prompt[sample.prompt_id].append((sample, score_of[sample.id]))
    for candidates in by_prompt.values():
        candidates.sort(key=lambda pair: -pair[1])  # stable: ties stay in sample order
    return dict(by_prompt)


def length_controlled(
    candidates: Mapping[str, list[tuple[Sample, float]]], band: float | None
) -> dict[str, list[tuple[Sample, float]]]:
    """Reorder each prompt's candidates: those within `band` points of the best, shortest first, then the rest.

    With `band` None the candidates are returned as they are (best first).
    Equal lengths keep score order, so the result is deterministic.
    """
    if band is None:
        return dict(candidates)
    out = {}
    for prompt_id, ranked in candidates.items():
        if not ranked:
            out[prompt_id] = []
            continue
        best = ranked[0][1]
        near = [pair for pair in ranked if pair[1] >= best - band]
        near.sort(key=lambda pair: pair[0].num_tokens)  # stable: equal lengths stay in score order
        out[prompt_id] = near + [pair for pair in ranked if pair[1] < best - band]
    return out


def drop_near_duplicates(examples: Sequence[SFTExample], threshold: float, embedder: Embedder) -> list[SFTExample]:
    """Drop each example whose response embedding is at least `threshold` cosine-similar to a better-scored kept one.

    Priority is the judge's score (higher first; unscored rewrites last), so
    of two near-duplicates the better-judged survives. Order is preserved.
    """
    order = sorted(range(len(examples)), key=lambda i: -examples[i].score if examples[i].score is not None else float("inf"))
    dropped = {order[i] for i in near_duplicates([examples[i].completion for i in order], threshold, embedder)}
    return [e for i, e in enumerate(examples) if i not in dropped]


def select_top_k(candidates: Mapping[str, list[tuple[Sample, float]]], k: int, min_score: float | None = None):
    """The best `k` samples of each prompt, optionally above an absolute floor."""
    for pairs in candidates.values():
        kept = [(s, score) for s, score in pairs if min_score is None or score >= min_score]
        yield from kept[:k]


def select_above_threshold(candidates: Mapping[str, list[tuple[Sample, float]]], min_score: float):
    """Every sample scoring at least `min_score`."""
    for pairs in candidates.values():
        yield from ((s, score) for s, score in pairs if score >= min_score)


def select(
    prompts: Mapping[str, Prompt],
    samples: Sequence[Sample],
    judgments: Sequence[Judgment],
    strategy: str = "top_k",
    top_k: int = 1,
    min_score: float | None = None,
    length_band: float | None = None,
) -> list[SFTExample]:
    """Choose the samples that become SFT examples.

    Args:
        prompts: prompt id -> prompt (for the messages of each example).
        samples, judgments: one iteration's samples and their judgments.
        strategy: "top_k" or "threshold".
        top_k: samples kept per prompt with "top_k".
        min_score: absolute floor; required with "threshold".
        length_band: with "top_k", prefer the shortest samples within this many points of the best.
    """
    candidates = length_controlled(scored_candidates(samples, judgments), length_band)
    if strategy == "top_k":
        chosen = select_top_k(candidates, top_k, min_score)
    elif strategy == "threshold":
        if min_score is None:
            raise ValueError("strategy 'threshold' needs min_score")
        chosen = select_above_threshold(candidates, min_score)
    else:
        raise ValueError(f"unknown selection strategy {strategy!r}")
    return [
        SFTExample(
            sample_id=s.id,
            prompt_id=s.prompt_id,
            messages=prompts[s.prompt_id].messages,
            completion=s.text.strip(),
            score=score,
        )
        for s, score in chosen
    ]


def revision_examples(
    prompts: Mapping[str, Prompt], revisions: Sequence[Sample], selected: Sequence[SFTExample]
) -> list[SFTExample]:
    """Critique-and-revise rewrites as extra SFT examples.

    A rewrite is made after judging, so it has no score (None) and no score
    floor applies to it. Empty rewrites and repeats of a text already selected
    for the same prompt (an example or an earlier rewrite) are dropped.
    """
    seen = {(e.prompt_id, e.completion) for e in selected}
    examples = []
    for sample in revisions:
        text = sample.text.strip()
        if not text or (sample.prompt_id, text) in seen:
            continue
        seen.add((sample.prompt_id, text))
        examples.append(SFTExample(sample.id, sample.prompt_id, prompts[sample.prompt_id].messages, text, None))
    return examples


def select_pairs(
    prompts: Mapping[str, Prompt],
    samples: Sequence[Sample],
    judgments: Sequence[Judgment],
    min_margin: float = 0.0,
    length_band: float | None = None,
) -> list[PreferencePair]:
    """Best-vs-worst preference pairs: one per prompt, for DPO.

    Among a prompt's valid, non-empty, distinct samples the best-scored one is
    chosen and the worst-scored one rejected. A prompt gives no pair when it
    has fewer than two such samples, when they all score the same (a tie says
    nothing about which is better), or when the gap is below `min_margin`.
    Ties within the top or the bottom score resolve by generation order (the
    earliest best, the latest worst), so the result is deterministic.

    Args:
        prompts: prompt id -> prompt (for the messages of each pair).
        samples, judgments: one iteration's samples and their judgments.
        min_margin: smallest chosen-minus-rejected score gap that makes a pair.
        length_band: choose the shortest sample within this many points of the best, not the best itself.

    Returns:
        The pairs, in the order the prompts first appear in `samples`.
    """
    pairs = []
    for prompt_id, ranked in scored_candidates(samples, judgments).items():
        if len(ranked) < 2:
            continue
        (worst, worst_score) = ranked[-1]
        (best, best_score) = length_controlled({prompt_id: ranked}, length_band)[prompt_id][0]
        margin = best_score - worst_score
        if margin <= 0 or margin < min_margin:
            continue
        pairs.append(
            PreferencePair(
                prompt_id=prompt_id,
                messages=prompts[prompt_id].messages,
                chosen=best.text.strip(),
                rejected=worst.text.strip(),
                chosen_sample_id=best.id,
                rejected_sample_id=worst.id,
                chosen_score=best_score,
                rejected_score=worst_score,
            )
        )
    return pairs
