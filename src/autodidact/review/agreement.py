"""Agreement between a person's ratings and the judge at a human validation checkpoint."""

from __future__ import annotations

import math
import warnings

from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from autodidact.records import Rating, ReviewItem
from autodidact.store import RunStore

# Pair ratings and judge preferences are 1.0 / 0.0 / 0.5; kappa compares them as labels.
PAIR_LABELS = {1.0: "first", 0.0: "second", 0.5: "tie"}


def _finite(value: float) -> float | None:
    """NaN / inf (undefined) -> None; rounded so float noise does not turn a perfect 1.0 into 0.9999999999999999."""
    value = float(value)
    return round(value, 12) if math.isfinite(value) else None


def _spearman(human: list[float], judge: list[float]) -> float | None:
    # Undefined for fewer than two points or a constant side (scipy would return NaN and warn).
    if len(human) < 2 or len(set(human)) < 2 or len(set(judge)) < 2:
        return None
    return _finite(spearmanr(human, judge).statistic)


def _kappa(human: list[str], judge: list[str]) -> float | None:
    if not human:
        return None
    with warnings.catch_warnings():  # both sides one same label: chance agreement is 1, kappa is 0/0
        warnings.simplefilter("ignore")
        return _finite(cohen_kappa_score(human, judge, labels=list(PAIR_LABELS.values())))


def agreement(items: list[ReviewItem], ratings: list[Rating], min_ratings: int = 5) -> dict[str, float | None]:
    """Human-judge agreement over the rated items among `items`.

    Returns:
        ``human_ratings``: how many of the items are rated;
        ``human_spearman``: Spearman correlation of human and judge scores
        (score items; None with fewer than 2 or constant scores);
        ``human_accuracy`` / ``human_kappa``: how often the person picked what
        the judge preferred, and Cohen's kappa of the two (pair items; labels
        first / second / tie; None when undefined);
        ``human_agreement``: the figure a checkpoint is tracked by, Spearman
        for score items and kappa for pair items (score items win in a mixed
        list), None with fewer than `min_ratings` ratings of that kind.
    """
    by_id = {item.id: item for item in items}
    rated = [(by_id[r.item_id], r.value) for r in ratings if r.item_id in by_id]
    scores = [(value, item.judge_score) for item, value in rated if item.kind == "score"]
    pairs = [(PAIR_LABELS[value], PAIR_LABELS[item.judge_preference]) for item, value in rated if item.kind == "pair"]

    spearman = _spearman([h for h, _ in scores], [j for _, j in scores])
    accuracy = sum(h == j for h, j in pairs) / len(pairs) if pairs else None
    kappa = _kappa([h for h, _ in pairs], [j for _, j in pairs])
    tracked, count = (spearman, len(scores)) if scores else (kappa, len(pairs))
    return {
        "human_ratings": float(len(rated)),
        "human_spearman": spearman,
        "human_accuracy": accuracy,
        "human_kappa": kappa,
        "human_agreement": tracked if count >= min_ratings else None,
    }


def update_agreement(store: RunStore, iteration: int, min_ratings: int) -> dict[str, float | None]:
    """Recompute the agreement of the checkpoint at `iteration` and store it as that iteration's metrics."""
    values = agreement(store.review_items(iteration), store.ratings(iteration), min_ratings)
    with store.transaction():
        store.set_metrics(iteration, values)
    return values


def check_rating(item: ReviewItem, value: float) -> float:
    """Return `value` if it is a valid rating of `item` (0-10 for a score, 1 / 0 / 0.5 for a pair); else ValueError."""
    value = float(value)
    if item.kind == "pair":
        if value not in PAIR_LABELS:
            raise ValueError(f"a pair rating is 1 (first better), 0 (second better) or 0.5 (tie), not {value:g}")
    elif not 0.0 <= value <= 10.0:  # also rejects NaN
        raise ValueError(f"a score is a number from 0 to 10, not {value:g}")
    return value
