"""The screen's signals: each a judge section (`judge.method` and its fields), by the name `--signals` takes.

Kept apart from the metrics (`screen_metrics`) and free of heavy imports, so the CLI checks a
signal's name before torch loads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from autodidact.errors import unknown_name

# One record per signal: its name in `--signals` -> the judge section that computes it. Sections whose
# method is not registered (yet) are skipped with a note, so the table may name judges still being added.
SIGNALS: dict[str, dict[str, Any]] = {
    "direct": {"method": "direct"},
    "rubric": {"method": "rubric"},
    # cycle: each sample meets its two neighbours; a round robin of 8 samples is 56 comparisons a prompt.
    "pairwise": {"method": "pairwise", "pairwise_schedule": "cycle"},
    "consistency": {"method": "self_consistency", "consistency_score": "share"},
    "ensemble": {"method": "ensemble", "members": [{"method": "direct"}, {"method": "rubric"}]},
    "self_certainty": {"method": "self_certainty"},
    "token_confidence": {"method": "self_certainty", "certainty": "mean_logprob"},
    "reverse_likelihood": {"method": "reverse_likelihood"},
    "semantic_agreement": {"method": "semantic_agreement"},
    "self_examples": {"method": "self_examples"},
    "consistency_x_certainty": {
        "method": "ensemble", "combine": "product",
        "members": [{"method": "self_consistency", "consistency_score": "share"}, {"method": "self_certainty"}],
    },
    "semantic_x_certainty": {
        "method": "ensemble", "combine": "product",
        "members": [{"method": "semantic_agreement"}, {"method": "self_certainty"}],
    },
    "random": {"method": "random"},  # the reference row: AUC 0.5 and the random pick's precision by construction
}


def section_methods(section: Mapping[str, Any]) -> Iterator[str]:
    """Every `method` a judge section names: its own, its members', its per-task judges'."""
    yield section.get("method", "direct")
    for member in section.get("members", []):
        yield from section_methods(member)
    for routed in section.get("tasks", {}).values():
        yield from section_methods(routed)


def signal_names(requested: Sequence[str]) -> list[str]:
    """The signals to screen, in the order requested, repeats dropped (all of them when none is named).

    Raises:
        AutodidactError: a name the table does not hold.
    """
    for name in requested:
        if name not in SIGNALS:
            raise unknown_name("signal", name, SIGNALS, field="--signals")
    return list(dict.fromkeys(requested)) or list(SIGNALS)
