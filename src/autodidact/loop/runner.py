"""The runner: iterate a stage plan, iteration by iteration, until a stop reason or a pause.

Each stage commits its outputs with its done mark in one transaction, so a
killed run resumes at the first stage that is not done, and redoing that
stage cannot duplicate rows. Iteration 0 evaluates the base model only.
A training fault (NaN, a collapsed held-out metric) rolls the iteration's
training back: it is retried at a lower learning rate or the run stops.

Between iterations the runner stops on a monitor alert whose stop is set,
on too little human-judge agreement (`review.min_agreement`), or on the
held-out history (`stopping`); with `review.pause` it pauses while a
checkpoint's items wait for ratings (unless the run stops there anyway).
"""

from __future__ import annotations

import logging
import shutil
import time

from autodidact.loop.context import RunContext
from autodidact.loop.prompts import prepare_prompts
from autodidact.loop.results import RunResult, collect_result
from autodidact.loop.stages import STAGES, Stage, StagePlan
from autodidact.loop.stages.train import learning_rate
from autodidact.memory import reset_peak_rss, rss_mib
from autodidact.review.gate import agreement_stop, pause_message
from autodidact.stopping import best_iteration, stop_reason
from autodidact.tracking import NullTracker, run_tracker
from autodidact.training.faults import TrainingFault, restore_policy

log = logging.getLogger(__name__)


class Runner:
    """Drives one run directory through a stage plan. Build it with `autodidact.run()` or `autodidact.resume()`."""

    def __init__(self, ctx: RunContext, plan: StagePlan) -> None:
        self.ctx, self.plan, self.store = ctx, plan, ctx.store
        self._prepared = False  # the tasks built (or, on resume, restored) their prompts in this process

    def prepare(self) -> None:
        """Build every task's prompts and store them (once per run), or restore the tasks on resume."""
        if not self._prepared:
            prepare_prompts(self.ctx)
            self._prepared = True

    def run(self) -> RunResult:
        """Run (or continue) the iterations; the tracker and the engine are closed however it ends."""
        self.ctx.tracker = run_tracker(self.ctx.config, self.ctx.run_dir)
        try:
            self.prepare()
            return self._iterate()
        finally:
            self.ctx.tracker.close()
            self.ctx.tracker = NullTracker()
            self.ctx.close()

    def _iterate(self) -> RunResult:
        it = 0
        while True:
            try:
                for stage in self.plan.for_iteration(it):
                    self.run_stage(stage, it)
            except TrainingFault as fault:
                reason = self.roll_back(it, str(fault))
                if reason:
                    return self._finish(reason)
                continue  # the train stage is redone (its mark was removed), then evaluate and monitor
            if self._continued(it):  # a resumed run: this iteration's stop checks passed before the kill
                it += 1
                continue
            reason = (
                self._monitor_stop(it)
                or agreement_stop(self.store, self.ctx.config.review, self.ctx.tracker)
                or stop_reason(self._history(it), **self._stop_args())
            )
            if reason:
                return self._finish(reason)
            if self.ctx.config.review.pause and self.store.review_items(pending=True):
                return collect_result(self.ctx.run_dir, self.store, paused=pause_message(self.store, self.ctx.run_dir))
            it += 1

    def run_stage(self, stage: Stage, it: int) -> None:
        """Run one stage unless the store marks it done, and commit its output with its mark."""
        if self.store.stage_done(it, stage.name):
            return
        log.debug("iteration %d: %s", it, stage.name)  # with -v: the default output is progress and results
        start = time.perf_counter()
        peak_known = reset_peak_rss()
        output = stage.run(self.ctx, it)
        info = output.info()
        if peak_known and (memory := rss_mib()):  # the stage's own peak resident memory (Linux)
            info["peak_rss_mib"] = round(memory[1])
        with self.store.transaction():
            output.write(self.store, it)
            self.store.finish_stage(it, stage.name, time.perf_counter() - start, info)
        stage.after_commit(self.ctx, it, output)

    def _continued(self, it: int) -> bool:
        """Whether iteration `it + 1` has begun: the run already decided not to stop (nor pause) after `it`.

        A resumed run must not decide again on what it knows now: the held-out
        metrics of later iterations, ratings given since.
        """
        return any(self.store.stage_done(it + 1, stage) for stage in STAGES)

    def roll_back(self, it: int, reason: str) -> str | None:
        """Undo iteration `it`'s training after a fault; a stop reason, or None to train it again."""
        config, store = self.ctx.config, self.store
        attempts = len(store.faults(it)) + 1
        retry = config.training.on_fault == "retry" and attempts <= config.training.max_retries
        action = f"retry at learning rate {learning_rate(config, store, it, attempts):g}" if retry else "stop"
        log.warning("iteration %d: training fault: %s; rolled back to the previous checkpoint, %s", it, reason, action)
        online = [s.id for s in store.samples(it) if s.origin == "online"]
        with store.transaction():
            store.add_fault(it, reason, learning_rate(config, store, it), action)
            store.undo_training(it, online)
        shutil.rmtree(self.ctx.run_dir / "checkpoints" / f"iter-{it}", ignore_errors=True)
        previous = store.checkpoint(it - 1) if it > 1 else None
        restore_policy(self.ctx.policy, config, previous)
        self.ctx.serve(previous, it - 1)  # the engine still serves the deleted checkpoint
        if retry:
            return None
        return f"training fault at iteration {it} ({reason}); rolled back to iteration {it - 1}'s model"

    def _stop_args(self) -> dict:
        s = self.ctx.config.stopping
        return {"max_iterations": s.max_iterations, "patience": s.patience, "min_delta": s.min_delta}

    def _history(self, last: int | None = None) -> list[float | None]:
        """The held-out metric of every evaluated iteration (up to `last`)."""
        last = self.ctx.config.stopping.max_iterations if last is None else last
        done = [it for it in range(last + 1) if self.store.stage_done(it, "evaluate")]
        return [self.store.metric(it, "heldout_metric") for it in done]

    def _monitor_stop(self, it: int) -> str | None:
        stopping = [a for a in self.store.alerts(it) if a.stop]
        if not stopping:
            return None
        return "; ".join(f"monitor {a.monitor} raised an alert (its stop is set): {a.message}" for a in stopping)

    def _finish(self, reason: str) -> RunResult:
        best = best_iteration(self._history())
        with self.store.transaction():
            if best > 0:
                self.store.set_best(best)
            self.store.set_meta("best_iteration", str(best))
            self.store.set_meta("stop_reason", reason)
        return collect_result(self.ctx.run_dir, self.store)
