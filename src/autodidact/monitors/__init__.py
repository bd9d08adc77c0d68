"""The known failure modes of self-improvement, measured every iteration.

Each monitor takes the evidence of one iteration (gathered by the loop from
the store) and the metrics of every iteration so far, adds its own metrics,
and may raise an alert. An alert is stored, shown in the end-of-run summary
and the report, and stops the run when that monitor's `stop` is set.

| monitor | measures | mitigation (elsewhere) |
|---|---|---|
| reward_hacking | held-out judge score vs pass rate (or a fixed reference judge) | rubric criteria, judge.model, verifiers |
| bias | position consistency, score-length correlation, ensemble disagreement | both-order judging, selection.length_band, ensembles |
| mode_collapse | distinct-1/2, self-BLEU, embedding similarity of sampled answers | generation.temperature_schedule, selection.dedup_similarity |
| diminishing_returns | gain per iteration and its trend | early stopping (stopping.*) |
| reliability | agreement of the judge with people (`autodidact review`) | review.pause, review.min_agreement |
| judge_reliability | per task, the judge's held-out AUC against the verifier | judge.model, rubric, verifiers |
| signal_decay | majority flips, kept and right-among-kept votes of a held-out probe | selection.min_score_schedule, selection.replay_base |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from autodidact.monitors.bias import bias_alert, score_length_correlation
from autodidact.monitors.diversity import collapse_alert, diversity_metrics, diversity_scores
from autodidact.monitors.judge_reliability import unreliable_judge_alert
from autodidact.monitors.returns import gain_trend, gains, returns_alert
from autodidact.monitors.reward_hacking import reward_hacking_alert, train_judge_score, unmeasured_notice
from autodidact.monitors.signal_decay import Vote, decay_alert, signal_metrics, vote_tasks
from autodidact.records import Alert, Judgment, Sample

if TYPE_CHECKING:
    from autodidact.config import RunConfig
    from autodidact.embeddings import Embedder

Metrics = Mapping[str, float | None]


@dataclass
class Evidence:
    """What the monitors look at for one iteration; plain data, so monitors test without a model."""

    iteration: int
    history: list[dict[str, float | None]]  # overall metrics of iterations 0..iteration (this one included)
    train_samples: list[Sample] = field(default_factory=list)  # none at iteration 0
    train_judgments: list[Judgment] = field(default_factory=list)
    probe_groups: list[list[str]] = field(default_factory=list)  # sampled answers per held-out probe prompt
    task_metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # this iteration's, per task
    votes: list[Vote] = field(default_factory=list)  # the vote probe's, per held-out prompt, with verdicts
    previous_votes: list[Vote] = field(default_factory=list)  # the previous iteration's (none at iteration 0)


class Monitor(Protocol):
    name: str
    stop: bool

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        """This iteration's metrics (added to the store and to `evidence.history[-1]` before `alert`)."""
        ...

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        """A one-paragraph warning about the last iteration of `history` (with this `evidence`), or None."""
        ...


class RewardHackingMonitor:
    name = "reward_hacking"

    def __init__(self, window: int, tolerance: float, stop: bool) -> None:
        self.window, self.tolerance, self.stop = window, tolerance, stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        if not evidence.train_judgments:
            return {}
        return {"train_judge_score": train_judge_score(evidence.train_judgments)}

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return reward_hacking_alert(history, self.window, self.tolerance)


class BiasMonitor:
    name = "bias"

    def __init__(self, min_position_consistency: float, max_length_correlation: float, max_disagreement: float,
                 stop: bool) -> None:
        self.thresholds = (min_position_consistency, max_length_correlation, max_disagreement)
        self.stop = stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        # position_consistency and disagreement come from the judge stage (the judges' own statistics).
        if not evidence.train_judgments:
            return {}
        return {"score_length_corr": score_length_correlation(evidence.train_samples, evidence.train_judgments)}

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return bias_alert(history[-1], *self.thresholds)


class ModeCollapseMonitor:
    name = "mode_collapse"

    def __init__(self, embedder: Embedder | None, max_drop: float, stop: bool) -> None:
        self.embedder, self.max_drop, self.stop = embedder, max_drop, stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        return diversity_metrics(evidence.probe_groups, self.embedder) if evidence.probe_groups else {}

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return collapse_alert([diversity_scores(m) for m in history], self.max_drop)


class ReturnsMonitor:
    name = "diminishing_returns"

    def __init__(self, window: int, min_delta: float, stop: bool) -> None:
        self.window, self.min_delta, self.stop = window, min_delta, stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        values = [m.get("heldout_metric") for m in evidence.history]
        return {"gain": gains(values)[-1], "gain_trend": gain_trend(values, self.window)}

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return returns_alert(history, self.min_delta)


class JudgeReliabilityMonitor:
    name = "judge_reliability"

    def __init__(self, min_auc: float, stop: bool) -> None:
        self.min_auc, self.stop = min_auc, stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        return {}  # judge_auc per task is stored by the evaluate stage

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return unreliable_judge_alert(evidence.task_metrics, self.min_auc)


class SignalDecayMonitor:
    name = "signal_decay"

    def __init__(self, min_share: float, max_flip_rate: float, max_drop: float, stop: bool) -> None:
        self.min_share, self.max_flip_rate, self.max_drop, self.stop = min_share, max_flip_rate, max_drop, stop

    def measure(self, evidence: Evidence) -> dict[str, float | None]:
        return signal_metrics(evidence.previous_votes, evidence.votes, self.min_share)

    def alert(self, history: Sequence[Metrics], evidence: Evidence) -> str | None:
        return decay_alert(history, self.max_flip_rate, self.max_drop)


def build_monitors(config: RunConfig, embedder: Embedder | None) -> list[Monitor]:
    """The monitors a config asks for (the reliability checks run in the loop's review gate)."""
    m = config.monitors
    if not m.enabled:
        return []
    monitors: list[Monitor] = [
        RewardHackingMonitor(m.reward_hacking.window, m.reward_hacking.tolerance, m.reward_hacking.stop),
        BiasMonitor(m.bias.min_position_consistency, m.bias.max_length_correlation, m.bias.max_disagreement,
                    m.bias.stop),
        ModeCollapseMonitor(embedder, m.diversity.max_drop, m.diversity.stop),
        ReturnsMonitor(m.returns.window, config.stopping.min_delta, m.returns.stop),
    ]
    if m.judge_reliability.min_auc is not None:
        monitors.append(JudgeReliabilityMonitor(m.judge_reliability.min_auc, m.judge_reliability.stop))
    d = m.signal_decay
    if d.prompts and vote_tasks(config):  # only where a task is judged by agreement among its samples
        monitors.append(SignalDecayMonitor(d.min_share, d.max_flip_rate, d.max_drop, d.stop))
    return monitors


def check(monitors: Sequence[Monitor], evidence: Evidence) -> tuple[dict[str, float | None], list[Alert]]:
    """Run every monitor on one iteration: its new metrics, and the alerts raised.

    At iteration 0 it also says, as a `reward_hacking` alert that never stops the run, when that monitor has
    nothing to check the judge against (`unmeasured_notice`): once per run, stored and listed like any alert.
    """
    history = [dict(m) for m in evidence.history]
    metrics: dict[str, float | None] = {}
    for monitor in monitors:
        measured = monitor.measure(evidence)
        metrics |= measured
        history[-1] |= measured
    alerts = []
    for monitor in monitors:
        message = monitor.alert(history, evidence)
        if message:
            alerts.append(Alert(evidence.iteration, monitor.name, message, stop=monitor.stop))
    if evidence.iteration == 0 and any(m.name == RewardHackingMonitor.name for m in monitors):
        notice = unmeasured_notice(history[0])
        if notice:  # its own alert can never fire at iteration 0 (a window needs two points): no duplicate
            alerts.append(Alert(0, RewardHackingMonitor.name, notice, stop=False))
    return metrics, alerts


__all__ = ["Evidence", "JudgeReliabilityMonitor", "Monitor", "SignalDecayMonitor", "build_monitors", "check"]
