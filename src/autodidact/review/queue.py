"""Pick the judged items a person reviews at a human validation checkpoint."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from itertools import combinations

from autodidact.config import ReviewConfig
from autodidact.records import ReviewItem
from autodidact.store import RunStore


@dataclass(frozen=True)
class _Judged:
    sample_id: str
    prompt_id: str
    score: float


def _judged_train_samples(store: RunStore, iteration: int, judge_name: str) -> list[_Judged]:
    """The iteration's training samples with a successful judgment, in sample order."""
    train = {p.id for p in store.prompts(split="train")}
    prompt_of = {s.id: s.prompt_id for s in store.samples(iteration)}
    return [
        _Judged(j.sample_id, prompt_of[j.sample_id], float(j.score))
        for j in store.judgments(iteration, judge_name)
        if j.score is not None and prompt_of[j.sample_id] in train
    ]


def _strata(n: int, m: int) -> list[range]:
    """Split positions 0..n-1 into m consecutive, (nearly) equal-count ranges."""
    return [range(k * n // m, (k + 1) * n // m) for k in range(m)]


def _score_items(judged: list[_Judged], iteration: int, m: int, rng: random.Random) -> list[ReviewItem]:
    ranked = sorted(judged, key=lambda j: j.score)  # stable: ties keep sample order
    picked = [ranked[rng.choice(stratum)] for stratum in _strata(len(ranked), m)]
    return [ReviewItem(id="", iteration=iteration, kind="score", prompt_id=j.prompt_id, sample_id=j.sample_id,
                       judge_score=j.score) for j in picked]


def _pair_items(judged: list[_Judged], iteration: int, m: int, rng: random.Random) -> list[ReviewItem]:
    by_prompt: dict[str, list[_Judged]] = {}
    for j in judged:
        by_prompt.setdefault(j.prompt_id, []).append(j)
    # Candidates: every two samples of one prompt that the judge scored differently, ranked by score gap.
    pairs = [(a, b) for group in by_prompt.values() for a, b in combinations(group, 2) if a.score != b.score]
    pairs.sort(key=lambda ab: abs(ab[0].score - ab[1].score))
    used_prompts: set[str] = set()
    items = []
    for stratum in _strata(len(pairs), min(m, len(pairs))):
        # Prefer a prompt not shown yet, so a single prompt does not fill the checkpoint.
        fresh = [i for i in stratum if pairs[i][0].prompt_id not in used_prompts]
        a, b = pairs[rng.choice(fresh or list(stratum))]
        used_prompts.add(a.prompt_id)
        if rng.random() < 0.5:  # which response comes first must say nothing about the judge's preference
            a, b = b, a
        items.append(ReviewItem(id="", iteration=iteration, kind="pair", prompt_id=a.prompt_id, sample_id=a.sample_id,
                                judge_score=a.score, other_sample_id=b.sample_id, other_judge_score=b.score))
    return items


def build_checkpoint(
    store: RunStore, iteration: int, judge_name: str, config: ReviewConfig, relative: bool, seed: int
) -> list[ReviewItem]:
    """Choose up to `config.items` judged training samples of `iteration` for a person to review.

    Score items: the judged samples are ranked by judge score and cut into
    `config.items` equal-count strata; one sample is drawn from each, so the
    person sees low, middle and high scores alike.

    Pair items: two samples of the same prompt with different judge scores.
    Candidate pairs are stratified by their score gap (not their mean score):
    agreement on preferences depends mostly on how close the two responses are,
    so the checkpoint covers both subtle and clear-cut differences. Within a
    stratum a prompt not used yet is preferred, and which response is shown
    first is random.

    The items come back shuffled (queue order must not reveal the judge's
    ranking) with ids ``ckpt{iteration}-{k}``, k = 1, 2, ...; fewer than
    `config.items` when there are not enough candidates. Nothing is written:
    the caller stores them with ``store.add_review_items``.

    Args:
        store: the run's store.
        iteration: the iteration whose samples are reviewed.
        judge_name: the judge whose judgments (scores) are reviewed.
        config: the run's review section (`items`, `kind`).
        relative: whether the judge compares responses (then kind 'auto' means pairs).
        seed: seed of the draw; the same seed picks the same items.
    """
    kind = config.kind if config.kind != "auto" else ("pair" if relative else "score")
    judged = _judged_train_samples(store, iteration, judge_name)
    rng = random.Random(seed)
    if kind == "pair":
        items = _pair_items(judged, iteration, config.items, rng)
    else:
        items = _score_items(judged, iteration, min(config.items, len(judged)), rng)
    rng.shuffle(items)
    return [replace(item, id=f"ckpt{iteration}-{k}") for k, item in enumerate(items, start=1)]
