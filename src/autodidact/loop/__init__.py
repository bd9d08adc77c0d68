"""The self-improvement loop: generate -> judge -> select -> train -> evaluate -> monitor, iteration by iteration."""

from autodidact.loop.runner import (
    CONFIG_FILE,
    STORE_FILE,
    RunResult,
    SelfImprovementLoop,
    collect_result,
    is_revision,
    iteration_rows,
    resume,
    run,
)

__all__ = [
    "CONFIG_FILE", "STORE_FILE", "RunResult", "SelfImprovementLoop", "collect_result", "is_revision",
    "iteration_rows", "resume", "run",
]
