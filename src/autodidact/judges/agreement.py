"""Semantic agreement: self-consistency for free-form answers, by sentence embeddings.

Self-consistency votes on extracted answers, which free text does not have. Here each sample is
embedded (the bundled all-MiniLM-L6-v2 by default, `autodidact.embeddings`) and scores 10 x its
mean cosine similarity with the other samples of its prompt, clipped to [0, 1]: the answer most
like the rest is the one the model gives most consistently. No model pass; one embedding per sample.
A prompt with a single sample has nothing to agree with: that judgment fails (None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autodidact.embeddings import Embedder, load_embedder
from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment

ALONE = "the only sample of its prompt: semantic agreement needs at least two samples per prompt"


def resolve_embedder(embedder: str | Embedder) -> Embedder:
    """An `Embedder` from a spec ('default' or a model directory) or an embedder object itself.

    Raises:
        AutodidactError: 'none', or a spec that does not load.
    """
    if not isinstance(embedder, str):
        return embedder
    try:
        loaded = load_embedder(embedder)
    except AutodidactError as err:
        raise AutodidactError(f"judge.embedder: {err}") from None
    if loaded is None:
        raise AutodidactError(
            "judge.embedder: 'none' turns embeddings off; this judge needs 'default' or a model directory."
        )
    return loaded


def prompt_groups(items: Sequence[JudgeItem]) -> dict[str, list[int]]:
    """Item indices by prompt id, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for idx, item in enumerate(items):
        groups.setdefault(item.prompt.id, []).append(idx)
    return groups


def agreement_scores(items: Sequence[JudgeItem], embedder: Embedder) -> list[float | None]:
    """Per item, the mean cosine similarity with the other samples of its prompt, clipped to [0, 1].

    None for an item alone with its prompt.
    """
    if not items:
        return []
    vectors = embedder.encode([item.response for item in items])  # (N, d), unit rows
    scores: list[float | None] = [None] * len(items)
    for members in prompt_groups(items).values():
        if len(members) < 2:
            continue
        group = vectors[members]  # (n, d)
        similarity = group @ group.T  # (n, n) cosines
        others = (similarity.sum(axis=1) - np.diag(similarity)) / (len(members) - 1)  # (n,) mean over the others
        for m, value in zip(members, np.clip(others, 0.0, 1.0)):
            scores[m] = float(value)
    return scores


class SemanticAgreementJudge:
    """10 x a sample's mean embedding similarity with its prompt's other samples.

    A call's `stats`: mean_agreement over the scored items.
    """

    name = "semantic_agreement"
    relative = True  # one answer alone has nothing to agree with

    def __init__(self, embedder: str | Embedder = "default"):
        self.embedder = resolve_embedder(embedder)

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One judgment per item: 10 x its agreement, or None with the reason for a prompt's only sample."""
        scores = agreement_scores(items, self.embedder)
        judgments = [
            Judgment(item.sample_id, self.name, None, error=ALONE)
            if score is None
            else Judgment(item.sample_id, self.name, 10.0 * score, raw=f'{{"agreement": {score:.6f}}}')
            for item, score in zip(items, scores)
        ]
        valid = [s for s in scores if s is not None]
        return JudgeResult(judgments, {"mean_agreement": sum(valid) / len(valid)} if valid else {})
