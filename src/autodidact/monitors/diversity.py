"""Mode-collapse measurements: how different are the samples a model gives for one prompt?

Self-training narrows a model: after a few rounds it may answer every prompt the same
way. Each measure here is computed per group (the samples of one prompt, so that
different prompts do not count as diversity) and averaged over groups with at least
two samples:

- distinct-n: unique n-grams / all n-grams (lexical variety);
- self-BLEU: how much each sample's n-grams are found in its siblings (lexical overlap);
- embedding similarity: mean cosine similarity of sentence embeddings (semantic overlap).

`diversity_scores` turns them into "higher = more diverse" scores and `collapse_alert`
compares the latest iteration with the base model (iteration 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sacrebleu.metrics import BLEU

from autodidact.embeddings import Embedder

# effective_order: a short sentence has no 3- or 4-grams; without it BLEU of a text against an
# identical copy would be smoothed below 1. sacrebleu's `sentence_bleu` uses the same default.
_BLEU = BLEU(effective_order=True)


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams / total n-grams over a group's texts (lowercased whitespace tokens).

    N-grams do not cross text boundaries. None when the texts hold no n-gram at all.
    """
    ngrams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = text.lower().split()
        ngrams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not ngrams:
        return None
    return len(set(ngrams)) / len(ngrams)


def self_bleu(texts: Sequence[str]) -> float | None:
    """Mean sentence BLEU (0..1) of each text against the group's other texts; None for < 2 texts.

    A text identical to one of its references scores exactly 1.0: sacrebleu returns
    100.00000000000004 there, and scores of empty texts are 0 even when both are empty,
    so exact matches are decided before BLEU and scores are clipped to 1.
    """
    if len(texts) < 2:
        return None
    scores = []
    for i, text in enumerate(texts):
        others = [other for j, other in enumerate(texts) if j != i]
        if text in others:
            scores.append(1.0)
        else:
            scores.append(min(_BLEU.sentence_score(text, others).score / 100, 1.0))
    return sum(scores) / len(scores)


def mean_pairwise_similarity(embeddings: np.ndarray) -> float | None:
    """Mean cosine similarity over the distinct pairs of rows; None for < 2 rows."""
    n = len(embeddings)
    if n < 2:
        return None
    # Re-normalise in float64: float32 rows of identical texts otherwise give 1 ± 1e-7.
    vectors = np.asarray(embeddings, dtype=np.float64)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    gram = vectors @ vectors.T  # (n, n)
    off_diagonal_sum = gram.sum() - np.trace(gram)
    return float(np.clip(off_diagonal_sum / (n * (n - 1)), -1.0, 1.0))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def diversity_metrics(groups: Sequence[Sequence[str]], embedder: Embedder | None) -> dict[str, float | None]:
    """Diversity of each group of samples, averaged over groups with at least 2 texts.

    Args:
        groups: one sequence of sample texts per prompt.
        embedder: gives sentence embeddings; None leaves `embedding_similarity` None.

    Returns:
        {"distinct_1", "distinct_2", "self_bleu", "embedding_similarity"}; a measure is
        None when no group gives it a value.
    """
    groups = [list(group) for group in groups if len(group) >= 2]
    metrics: dict[str, float | None] = {
        "distinct_1": _mean([distinct_n(group, 1) for group in groups]),
        "distinct_2": _mean([distinct_n(group, 2) for group in groups]),
        "self_bleu": _mean([self_bleu(group) for group in groups]),
        "embedding_similarity": None,
    }
    if embedder is not None and groups:
        # One encode call for every text: batching across prompts is much faster than per group.
        vectors = embedder.encode([text for group in groups for text in group])  # (total, d)
        bounds = np.cumsum([0] + [len(group) for group in groups])
        metrics["embedding_similarity"] = _mean(
            [mean_pairwise_similarity(vectors[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]
        )
    return metrics


def diversity_scores(metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    """The measures turned so that higher = more diverse, and identical samples score 0.

    distinct_2 of identical samples is not 0 (one text alone has unique bigrams); it is kept as is.
    """

    def one_minus(value: float | None) -> float | None:
        return None if value is None else 1.0 - value

    return {
        "distinct_2": metrics.get("distinct_2"),
        "bleu_diversity": one_minus(metrics.get("self_bleu")),
        "embedding_diversity": one_minus(metrics.get("embedding_similarity")),
    }


def collapse_alert(history: Sequence[Mapping[str, float | None]], max_drop: float) -> str | None:
    """A one-sentence warning when diversity fell too far below the base model's.

    Args:
        history: `diversity_scores` of each iteration; history[0] is the base model.
        max_drop: the largest tolerated fall, as a share of the iteration-0 value (0.3 = 30%).

    Returns:
        A message naming every measure whose latest value fell by more than `max_drop`
        of its iteration-0 value, or None. A measure without an iteration-0 value
        (None or 0: there is nothing to fall from) or without a latest value is skipped.
    """
    if len(history) < 2:
        return None
    base, latest = history[0], history[-1]
    falls = []
    for name, before in base.items():
        now = latest.get(name)
        if before is None or before <= 0 or now is None:
            continue
        drop = (before - now) / before
        if drop > max_drop:
            falls.append(f"{name} fell from {before:.3f} to {now:.3f} (-{drop:.0%})")
    if not falls:
        return None
    return (
        f"Possible mode collapse at iteration {len(history) - 1}: {', '.join(falls)} since iteration 0, "
        f"more than the {max_drop:.0%} allowed."
    )
