"""Bias amplification: a judge that prefers a position, a length, or one perspective.

Three measurements of the training judge, per iteration: how often pairwise
judging agrees with itself when the two responses swap places (from the
pairwise and contrastive judges), how strongly the score follows response
length (Spearman), and how far the members of an ensemble disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scipy.stats import spearmanr

from autodidact.records import Judgment, Sample


def score_length_correlation(samples: Sequence[Sample], judgments: Sequence[Judgment]) -> float | None:
    """Spearman correlation of judge score and response length (tokens) over valid judgments.

    None with fewer than 3 scored samples or when scores or lengths are all equal.
    """
    length = {s.id: s.num_tokens for s in samples}
    pairs = [(j.score, length[j.sample_id]) for j in judgments if j.score is not None and j.sample_id in length]
    if len(pairs) < 3:
        return None
    scores, lengths = zip(*pairs)
    if len(set(scores)) < 2 or len(set(lengths)) < 2:
        return None
    return float(spearmanr(scores, lengths).statistic)


def bias_alert(
    metrics: Mapping[str, float | None], min_position_consistency: float, max_length_correlation: float,
    max_disagreement: float,
) -> str | None:
    """One sentence naming every bias measure of this iteration past its threshold, or None."""
    found = []
    consistency = metrics.get("position_consistency")
    if consistency is not None and consistency < min_position_consistency:
        found.append(
            f"pairwise judging agreed with itself across both orders in only {100 * consistency:.0f}% of pairs "
            f"(< {100 * min_position_consistency:.0f}%): it follows the position more than the content"
        )
    corr = metrics.get("score_length_corr")
    if corr is not None and abs(corr) > max_length_correlation:
        direction = "longer" if corr > 0 else "shorter"
        found.append(
            f"judge scores follow response length (Spearman {corr:+.2f}, beyond +/-{max_length_correlation:.2f}): "
            f"{direction} answers score higher; consider selection.length_band"
        )
    disagreement = metrics.get("disagreement")
    if disagreement is not None and disagreement > max_disagreement:
        found.append(
            f"the ensemble's members differ by {disagreement:.1f} points per sample on average "
            f"(> {max_disagreement:g}): the perspectives do not agree on what is good"
        )
    return "; ".join(found) + "." if found else None
