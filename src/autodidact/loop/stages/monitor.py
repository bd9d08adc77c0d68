"""The monitor stage: the known failure modes measured after each evaluation, their alerts, and the items
of a human validation checkpoint. Its commit ends the iteration: the tracker gets the iteration then.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from autodidact.loop.context import RunContext
from autodidact.loop.stages.inputs import train_samples
from autodidact.monitors import Evidence, check
from autodidact.monitors.probes import diversity_probe, reference_score, vote_probe
from autodidact.monitors.signal_decay import Vote, vote_tasks, votes_from_json, votes_to_json
from autodidact.records import Alert, ReviewItem
from autodidact.review import build_checkpoint
from autodidact.store import RunStore
from autodidact.tracking import iteration_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Monitored:
    """The monitor stage's output: the monitors' metrics and alerts, and the review items queued."""

    metrics: dict[str, float | None]
    alerts: list[Alert] = field(default_factory=list)
    review_items: list[ReviewItem] = field(default_factory=list)
    probe_prompts: int = 0  # held-out prompts the diversity probe sampled
    votes: list[Vote] = field(default_factory=list)  # the vote probe's, kept for the next iteration's flips

    def write(self, store: RunStore, iteration: int) -> None:
        store.add_metrics(iteration, self.metrics)
        store.add_alerts(self.alerts)
        store.add_review_items(self.review_items)
        if self.votes:
            store.set_meta(vote_key(iteration), votes_to_json(self.votes))

    def info(self) -> dict[str, Any]:
        return {"alerts": len(self.alerts), "review_items": len(self.review_items), "probe_prompts": self.probe_prompts}


@dataclass(frozen=True)
class Monitor:
    """Run the monitors on the iteration's evidence and queue a review checkpoint when one is due."""

    name: str = "monitor"

    def run(self, ctx: RunContext, iteration: int) -> Monitored:
        evidence = gather_evidence(ctx, iteration)
        metrics: dict[str, float | None] = {}
        if ctx.reference_judge is not None:
            heldout = ctx.store.prompts(split="heldout")
            metrics["reference_judge_score"] = reference_score(ctx.reference_judge, heldout, ctx.store.samples(iteration))
            evidence.history[-1] |= metrics
        measured, alerts = check(ctx.monitors, evidence)
        metrics |= measured
        for alert in alerts:
            log.warning("iteration %d: %s alert: %s", iteration, alert.monitor, alert.message)
        return Monitored(metrics, alerts, review_items(ctx, iteration), len(evidence.probe_groups), evidence.votes)

    def after_commit(self, ctx: RunContext, iteration: int, output: Monitored) -> None:
        # Committed: send the iteration (a resumed run does not resend finished ones).
        ctx.tracker.log_iteration(iteration, *iteration_payload(ctx.store, iteration))


def vote_key(iteration: int) -> str:
    """The store's meta key of an iteration's vote probe."""
    return f"vote_probe/{iteration}"


def gather_evidence(ctx: RunContext, iteration: int) -> Evidence:
    """What the monitors read: the metric history, this iteration's per-task metrics, training samples, probes."""
    store = ctx.store
    history = [{row["name"]: row["value"] for row in store.metrics(i) if not row["task"]} for i in range(iteration + 1)]
    by_task: dict[str, dict[str, float | None]] = defaultdict(dict)
    for row in store.metrics(iteration):
        if row["task"]:
            by_task[row["task"]][row["name"]] = row["value"]
    evidence = Evidence(iteration, history, task_metrics=dict(by_task))
    if iteration > 0:
        _, samples = train_samples(store, iteration)
        evidence.train_samples = [s for s in samples if s.origin != "revision"]
        train_ids = {s.id for s in evidence.train_samples}  # not the held-out answers the same judge scored
        evidence.train_judgments = [j for j in store.judgments(iteration, ctx.judge.name) if j.sample_id in train_ids]
    if ctx.monitors and ctx.config.monitors.diversity.prompts:
        evidence.probe_groups = diversity_probe(
            ctx.engine,
            store.prompts(split="heldout"),
            ctx.config.monitors.diversity,
            ctx.config.generation,
            ctx.config.seed,
            desc=f"diversity probe (iter {iteration})",
        )
    extractors = vote_tasks(ctx.config)
    if ctx.monitors and ctx.config.monitors.signal_decay.prompts and extractors:
        c = ctx.config
        evidence.votes = vote_probe(
            ctx.engine, store.prompts(split="heldout"), ctx.tasks, extractors, c.monitors.signal_decay, c.generation,
            c.seed, desc=f"vote probe (iter {iteration})",
        )
        evidence.previous_votes = votes_from_json(store.get_meta(vote_key(iteration - 1))) if iteration else []
    return evidence


def review_items(ctx: RunContext, iteration: int) -> list[ReviewItem]:
    """The items of a human validation checkpoint, when `review.every` makes this iteration one."""
    r = ctx.config.review
    if not r.every or iteration == 0 or iteration % r.every:
        return []

    return build_checkpoint(ctx.store, iteration, ctx.judge.name, r, ctx.judge.relative, seed=ctx.config.seed + iteration)
