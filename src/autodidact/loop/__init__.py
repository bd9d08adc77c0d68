"""The self-improvement loop: generate -> judge -> select -> train -> evaluate -> monitor, iteration by iteration.

`runner.Runner` iterates a stage plan (`stages`) over a `context.RunContext`
built once; `entry.run` and `entry.resume` set up the run directory and store.
"""

from autodidact.loop.entry import resume, run
from autodidact.loop.results import CONFIG_FILE, STORE_FILE, RunResult, collect_result, iteration_rows

__all__ = ["CONFIG_FILE", "STORE_FILE", "RunResult", "collect_result", "iteration_rows", "resume", "run"]
