"""The evaluate stage: greedy answers to the held-out prompts, verified (and, if configured, judged).

From iteration 1 on, a held-out metric that fell by more than
`stopping.max_metric_drop` raises `TrainingFault` before anything is stored:
a collapsed iteration is rolled back, not recorded. The paraphrased held-out
set (none in a run begun before it existed) gets the same greedy answers and
verifiers, no judge; its figures are stored as paraphrase_*, and early
stopping never reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from autodidact.evaluation import HeldoutResult, evaluate_heldout, paraphrase_metrics
from autodidact.loop.context import RunContext
from autodidact.records import PARAPHRASE_SPLIT, Judgment, Sample
from autodidact.store import RunStore
from autodidact.training.faults import check_heldout


@dataclass(frozen=True)
class Evaluated:
    """The evaluate stage's output: held-out answers (origin "heldout"), their judgments, metrics by task."""

    samples: list[Sample]
    judgments: list[Judgment]
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # task ('' = all) -> name -> value
    heldout_judge: str | None = None  # the judge that scored the answers, None without one

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_samples(self.samples)
        store.add_judgments(self.judgments)
        for task, values in self.metrics.items():
            store.add_metrics(iteration, values, task=task)

    def info(self) -> dict[str, Any]:
        return {"heldout_judge": self.heldout_judge}


@dataclass(frozen=True)
class Evaluate:
    """Measure the policy on the held-out prompts; `evaluate` is the evaluation it calls."""

    name: str = "evaluate"
    evaluate: Callable[..., HeldoutResult] = evaluate_heldout

    def run(self, ctx: RunContext, iteration: int) -> Evaluated:
        judge = ctx.heldout_judge if ctx.config.evaluation.judge_heldout else None
        heldout = ctx.store.prompts(split="heldout")
        max_new_tokens = ctx.config.evaluation.max_new_tokens
        result = self.evaluate(ctx.engine, judge, ctx.tasks, heldout, iteration, max_new_tokens)
        if iteration > 0:
            previous = ctx.store.metric(iteration - 1, "heldout_metric")
            check_heldout(previous, result.metrics[""].get("heldout_metric"), ctx.config.stopping.max_metric_drop)
        metrics, samples = result.metrics, result.samples
        paraphrased = ctx.store.prompts(split=PARAPHRASE_SPLIT)
        if paraphrased:
            desc = f"paraphrased held-out eval (iter {iteration})"
            reworded = self.evaluate(ctx.engine, None, ctx.tasks, paraphrased, iteration, max_new_tokens, desc=desc)
            samples = samples + reworded.samples
            for task, values in paraphrase_metrics(reworded.metrics).items():
                metrics[task] = metrics.get(task, {}) | values
        samples = [replace(s, origin="heldout") for s in samples]
        return Evaluated(samples, result.judgments, metrics, judge.name if judge is not None else None)

    def after_commit(self, ctx: RunContext, iteration: int, output: Evaluated) -> None:
        pass
