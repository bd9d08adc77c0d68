"""Held-out evaluation: greedy answers to prompts the model never trains on.

Per task: the verifier's pass rate with a 95% Wilson interval, the mean
self-judge score, how well that score ranks passing above failing answers
(ROC AUC against the verifier), and the mean response length. The headline
metric that early stopping watches is the mean pass rate over tasks.

A second held-out set, where a task has one (`Task.build_paraphrased`), asks
problems of the same kind in phrasings the training prompts never use. It is
answered and verified the same way, without the judge, and its figures are
stored as `paraphrase_<name>` (`paraphrase_metrics`): a gain on the usual
held-out prompts that is absent there was learnt from the prompt templates.

A relative judge (pairwise, contrastive, self-consistency, or an ensemble
with one of them) compares several samples of a prompt, so it cannot score
the single greedy answer held-out evaluation makes per prompt; there a
direct 0-10 judge on the same engine scores instead (`heldout_judge`).

Two models answering the same prompts are compared pairwise (`paired_difference`):
the mean per-prompt difference with a 95% paired t interval, which is much
narrower than two separate Wilson intervals when the models agree on most prompts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import TYPE_CHECKING

from scipy.stats import t as student_t

from autodidact.engines import Engine, SamplingParams
from autodidact.judges import Judge, JudgeItem
from autodidact.judges.direct import DirectScoreJudge
from autodidact.records import Judgment, Prompt, Sample
from autodidact.tasks import Task
from autodidact.tasks.answering import answer, verify_all

if TYPE_CHECKING:
    from autodidact.config import JudgeConfig


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (good at small n and near 0 or 1)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def roc_auc(scores: Sequence[float | None], verdicts: Sequence[float | None]) -> float | None:
    """How well judge scores separate passing from failing answers: the ROC AUC.

    The probability that a passing answer (verdict >= 0.5) scores higher than a
    failing one, over every (pass, fail) pair, a tie counting half (the
    Mann-Whitney U statistic over n_pass x n_fail). 0.5 is chance, 1.0 a judge
    that ranks every pass above every fail. Answers whose score or verdict is
    None are left out; None when no passing or no failing answer remains.
    """
    passed, failed = [], []
    for score, verdict in zip(scores, verdicts, strict=True):
        if score is not None and verdict is not None:
            (passed if verdict >= 0.5 else failed).append(score)
    if not passed or not failed:
        return None
    wins = sum(1.0 if p > f else 0.5 if p == f else 0.0 for p in passed for f in failed)
    return wins / (len(passed) * len(failed))


def heldout_judge(judge: Judge, config: JudgeConfig, engine: Engine) -> Judge:
    """The judge that scores held-out answers: `judge` itself, or a direct judge where `judge` is relative.

    Args:
        judge: the training judge.
        config: its config section (mode, batch size and score-mass floor carry over).
        engine: the engine the training judge runs on; the direct judge runs there too.
    """
    if not judge.relative:
        return judge

    return DirectScoreJudge(engine, mode=config.mode, batch_size=config.batch_size, min_mass=config.min_score_mass)


@dataclass
class HeldoutResult:
    samples: list[Sample]
    judgments: list[Judgment]
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # task ('' = all) -> name -> value
    verdicts: dict[str, float | None] = field(default_factory=dict)  # sample id -> the verifier's grade


@dataclass(frozen=True)
class PairedDifference:
    """Mean of `a - b` over paired items, with its 95% paired t interval (None below two pairs)."""

    n: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    low: float | None
    high: float | None


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """The paired difference of two measurements of the same items (two models' grades of the same prompts).

    The interval is the paired t interval: mean(d) +- t(n-1) * sd(d) / sqrt(n),
    d = a - b. Identical grades give a difference of 0 and a zero-width interval;
    with fewer than two pairs the interval is None (one pair says nothing about spread).

    Raises:
        ValueError: `a` and `b` differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"paired measurements need equal lengths, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return PairedDifference(0, None, None, None, None, None)
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = fmean(d)
    if n < 2:
        return PairedDifference(n, fmean(a), fmean(b), mean, None, None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(n, fmean(a), fmean(b), mean, mean - half, mean + half)


def _mean(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


def heldout_metrics(
    prompts: Mapping[str, Prompt],
    samples: Sequence[Sample],
    verdicts: Mapping[str, float | None],
    judgments: Sequence[Judgment],
) -> dict[str, dict[str, float | None]]:
    """Aggregate per-sample verdicts and judgments into per-task and overall metrics."""
    score_of = {j.sample_id: j.score for j in judgments}
    by_task: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_task[prompts[s.prompt_id].task].append(s)
    metrics: dict[str, dict[str, float | None]] = {}
    for task, task_samples in by_task.items():
        graded = [verdicts[s.id] for s in task_samples if verdicts.get(s.id) is not None]
        passed = sum(graded)
        low, high = wilson_interval(passed, len(graded))
        scores = [score_of[s.id] for s in task_samples if score_of.get(s.id) is not None]
        auc = roc_auc([score_of.get(s.id) for s in task_samples], [verdicts.get(s.id) for s in task_samples])
        metrics[task] = {
            "pass_rate": passed / len(graded) if graded else None,
            "pass_low": low if graded else None,
            "pass_high": high if graded else None,
            "n": float(len(task_samples)),
            "ungraded": float(len(task_samples) - len(graded)),
            "judge_score": _mean(scores),
            "judge_auc": auc,
            "judge_failed": float(sum(1 for s in task_samples if s.id in score_of and score_of[s.id] is None)),
            "mean_tokens": _mean([s.num_tokens for s in task_samples]),
        }
    rates = [m["pass_rate"] for m in metrics.values() if m["pass_rate"] is not None]
    all_scores = [j.score for j in judgments if j.score is not None]
    overall: dict[str, float | None] = {
        "pass_rate": _mean(rates),
        "judge_score": _mean(all_scores),
        "judge_auc": roc_auc([score_of.get(s.id) for s in samples], [verdicts.get(s.id) for s in samples]),
        "mean_tokens": _mean([s.num_tokens for s in samples]),
    }
    # What early stopping watches: the verifiers where they exist, else the judge (rescaled to 0-1).
    judge_metric = overall["judge_score"] / 10 if overall["judge_score"] is not None else None
    overall["heldout_metric"] = overall["pass_rate"] if overall["pass_rate"] is not None else judge_metric
    metrics[""] = overall
    return metrics


# The verifier's figures of a task, which the paraphrased held-out set reports (it is not judged).
PARAPHRASE_FIGURES = ("pass_rate", "pass_low", "pass_high", "n", "ungraded")


def paraphrase_metrics(metrics: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """The paraphrased held-out set's figures, named apart from the usual held-out ones.

    Per task `paraphrase_pass_rate`, `paraphrase_pass_low`, `paraphrase_pass_high`
    (95% Wilson interval), `paraphrase_n`, `paraphrase_ungraded`; over all tasks
    ('') `paraphrase_pass_rate`, the mean over the tasks that have the set.

    Args:
        metrics: `heldout_metrics` of the answers to the paraphrased prompts.
    """
    renamed = {
        task: {f"paraphrase_{name}": values.get(name) for name in PARAPHRASE_FIGURES}
        for task, values in metrics.items() if task
    }
    if "" in metrics:
        renamed[""] = {"paraphrase_pass_rate": metrics[""].get("pass_rate")}
    return renamed


def evaluate_heldout(
    engine: Engine,
    judge: Judge | None,
    tasks: Mapping[str, Task],
    prompts: Sequence[Prompt],
    iteration: int,
    max_new_tokens: int,
    desc: str | None = None,
) -> HeldoutResult:
    """Answer every held-out prompt greedily, verify, and (optionally) self-judge."""
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
    outputs = answer(engine, tasks, prompts, params, desc=desc or f"held-out eval (iter {iteration})")
    samples = [
        Sample(id=f"it{iteration}-{p.id}-0", prompt_id=p.id, iteration=iteration, index=0, text=o[0].text, num_tokens=o[0].num_tokens)
        for p, o in zip(prompts, outputs)
    ]
    by_id = {p.id: p for p in prompts}
    verdicts = verify_all(tasks, by_id, {s.id: (s.prompt_id, s.text) for s in samples})
    judgments: list[Judgment] = []
    if judge is not None:
        judgments = judge.judge([JudgeItem(s.id, by_id[s.prompt_id], s.text) for s in samples]).judgments
    return HeldoutResult(samples, judgments, heldout_metrics(by_id, samples, verdicts, judgments), dict(verdicts))
