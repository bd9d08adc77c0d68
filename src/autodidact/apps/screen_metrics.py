"""What the screen measures of a signal: model passes (a counting engine), AUC and top-1 precision, the ceiling.

Each signal's scores are compared with the verifier's verdicts of the same samples: how well they
separate passing from failing answers (`roc_auc`, the judge_reliability monitor's AUC) and how often
the top-1 pick passes against a random pick (`scored_candidates`, selection's own ranking and ties).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autodidact.engines import Engine
from autodidact.evaluation import roc_auc
from autodidact.records import Judgment, Sample
from autodidact.selection import scored_candidates

# Engine methods that run no model: rendering a chat template, planning batches.
_FREE = frozenset({"render", "generation_batches", "scoring_batches"})


class PassCounter:
    """Passes every call to an engine and counts the rows it sends through the model.

    `generate` costs prompts x n sequences, `continuation_logprobs` one row per prompt (its
    continuations share that prompt's pass), and any other method forwarded counts the rows
    of its first argument: the model passes a signal costs, whatever capability it uses.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.passes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.engine, name)
        if name.startswith("_") or name in _FREE or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            rows = args[0] if args else next(iter(kwargs.values()), ())
            if isinstance(rows, Sequence) and not isinstance(rows, str):
                self.passes += len(rows)
            return attr(*args, **kwargs)

        return counted

    def generate(self, prompts: Sequence[str], params: Any, desc: str = "generating") -> Any:
        self.passes += len(prompts) * params.n
        return self.engine.generate(prompts, params, desc=desc)

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring") -> Any:
        self.passes += len(prompts)
        return self.engine.continuation_logprobs(prompts, continuations, desc=desc)


def passed(verdict: float | None) -> bool:
    """A verifier verdict that passes (>= 0.5, as `roc_auc` reads it); an ungraded answer does not."""
    return verdict is not None and verdict >= 0.5


@dataclass(frozen=True)
class SignalMetrics:
    """How one signal did on one task's samples."""

    auc: float | None  # pooled over the task's samples; None when all pass or all fail
    # Mean over prompts with both a passing and a failing scored sample of the AUC among that prompt's samples:
    # what selection uses (it ranks within a prompt), free of how the signal ranks prompts against each other.
    within_auc: float | None
    top1: float | None  # share of covered prompts whose top-scored valid sample passes
    random_top1: float | None  # mean over the same prompts of their valid samples' pass share
    covered: int  # prompts where the signal scored at least one valid sample
    prompts: int
    failed: int  # judgments with score None
    samples: int
    passes: int  # model rows sent for these samples
    seconds: float

    @property
    def coverage(self) -> float:
        return self.covered / self.prompts if self.prompts else 0.0

    @property
    def passes_per_sample(self) -> float:
        return self.passes / self.samples if self.samples else 0.0


def signal_metrics(
    samples: Sequence[Sample],
    scores: Mapping[str, float | None],
    verdicts: Mapping[str, float | None],
    passes: int = 0,
    seconds: float = 0.0,
) -> SignalMetrics:
    """The screen's row for one signal on one task.

    Args:
        samples: the task's samples, in generation order (prompt by prompt, index order): ties of the
            top-1 pick go to the earlier one, as selection breaks them.
        scores: sample id -> the signal's score; None (or missing) for a failed judgment.
        verdicts: sample id -> the verifier's grade (None: ungraded, never a pass).
        passes: model rows the signal sent for these samples.
        seconds: its wall time on them.
    """
    judged = [Judgment(s.id, "signal", scores.get(s.id)) for s in samples]
    picks = scored_candidates(samples, judged)
    # Valid samples as selection sees them (non-empty, a prompt's exact repeats once): a random pick's pool.
    valid = scored_candidates(samples, [Judgment(s.id, "any", 0.0) for s in samples])
    covered = [pid for pid, ranked in picks.items() if ranked]
    top1 = [passed(verdicts.get(picks[pid][0][0].id)) for pid in covered]
    shares = [sum(passed(verdicts.get(s.id)) for s, _ in valid[pid]) / len(valid[pid]) for pid in covered]
    by_prompt: dict[str, list[Sample]] = {}
    for s in samples:
        by_prompt.setdefault(s.prompt_id, []).append(s)
    within = [roc_auc([scores.get(s.id) for s in g], [verdicts.get(s.id) for s in g]) for g in by_prompt.values()]
    within = [a for a in within if a is not None]
    return SignalMetrics(
        auc=roc_auc([scores.get(s.id) for s in samples], [verdicts.get(s.id) for s in samples]),
        within_auc=sum(within) / len(within) if within else None,
        top1=sum(top1) / len(top1) if top1 else None,
        random_top1=sum(shares) / len(shares) if shares else None,
        covered=len(covered),
        prompts=len({s.prompt_id for s in samples}),
        failed=sum(scores.get(s.id) is None for s in samples),
        samples=len(samples),
        passes=passes,
        seconds=seconds,
    )


@dataclass(frozen=True)
class Ceiling:
    """What the samples allow: the prompts some sample solves, and the share of samples that pass."""

    prompts: int
    any_pass: float  # share of prompts with at least one passing sample: the best any pick can reach
    sample_pass_rate: float  # share of all samples that pass (ungraded ones do not)


def ceiling(samples: Sequence[Sample], verdicts: Mapping[str, float | None]) -> Ceiling:
    """The task's ceiling line: `any_pass` bounds every signal's top-1 precision from above."""
    solved: dict[str, bool] = {}
    for s in samples:
        solved[s.prompt_id] = solved.get(s.prompt_id, False) or passed(verdicts.get(s.id))
    n = len(solved)
    rate = sum(passed(verdicts.get(s.id)) for s in samples) / len(samples) if samples else 0.0
    return Ceiling(n, sum(solved.values()) / n if n else 0.0, rate)
