"""The crash harness's kill points: where each fresh run is killed (timed in a stage, or at an exact hook),
stratified so that every stage gets some. See benchmarks/crash_harness.py's docstring for the kinds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crash_run import ITERATIONS, STAGE_ORDER, STAGES

CHECKPOINT_HOOKS = ("ckpt-torn", "ckpt-partial", "ckpt-renamed")


@dataclass(frozen=True)
class Kill:
    """Where one process of a point is killed."""

    kind: str  # "startup" | "stage" (both timed) | "hook" (the child kills itself)
    iteration: int | None = None
    stage: str | None = None
    fraction: float = 0.0  # of the reference duration of the startup or stage
    hook: str | None = None  # e.g. "train-step:2", "ckpt-torn:1", "before-commit:2:judge", "config-written"

    def label(self) -> str:
        if self.kind == "hook":
            return self.hook
        where = "startup" if self.kind == "startup" else f"{self.iteration}:{self.stage}"
        return f"{where}@{self.fraction:.2f}"


@dataclass
class Point:
    index: int
    first: Kill
    resume_kill: float | None = None  # kill the first resume too, at this fraction of the stage it redoes
    then: list[Kill] = field(default_factory=list)  # or: these kills, one per resume, in this order


def plan_points(n: int, seed: int) -> list[Point]:
    """`n` kill points, stratified so that every stage is hit, fast ones included.

    In order: one timed kill per stage kind (a random iteration of it), one
    `before-commit` per stage kind (a stage of 20 ms is hard to hit by time,
    its uncommitted end is not), every checkpoint window and `config-written`,
    then the remaining timed strata; past those, timed kills at new fractions.
    """
    rng = random.Random(seed)
    frac = lambda: round(rng.uniform(0.05, 0.95), 3)  # noqa: E731
    timed = [Kill("startup", fraction=frac())] + [Kill("stage", it, s, frac()) for it, s in STAGE_ORDER]
    first = [rng.choice([k for k in timed if (k.stage or "startup") == kind]) for kind in ("startup", *STAGES)]
    commits = []
    for kind in STAGES:
        it = rng.choice([it for it, s in STAGE_ORDER if s == kind])
        commits.append(Kill("hook", hook=f"before-commit:{it}:{kind}"))
    windows = [Kill("hook", hook=f"{h}:{rng.choice(range(1, ITERATIONS + 1))}") for h in CHECKPOINT_HOOKS]
    rest = [k for k in timed if k not in first]
    rng.shuffle(rest)
    ordered = first + commits + windows + [Kill("hook", hook="config-written")] + rest
    while len(ordered) < n:
        k = rng.choice(timed)
        ordered.append(Kill(k.kind, k.iteration, k.stage, frac()))
    return [Point(i, kill, frac() if rng.random() < 1 / 3 else None) for i, kill in enumerate(ordered[:n])]
