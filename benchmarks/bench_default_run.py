"""Time the default run (`make demo`'s config) stage by stage, and its peak memory.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_default_run.py [--set key=value ...]

Prints the per-iteration tables, wall time, the time of each stage summed
over iterations, and the peak resident memory of the process; writes the
same to bench-results/default_run.json. The one-time GGUF conversion is
done (and timed) before the clock starts, as the target excludes the install.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    from autodidact.apps.log_setup import configure_logging
    from autodidact.apps.summary import iteration_table, timing_table
    from autodidact.config import load_config
    from autodidact.loop import run
    from autodidact.models import resolve_model

    configure_logging(quiet=True)
    t0 = time.perf_counter()
    resolve_model("default")  # one-time conversion, not part of the run's time
    convert_s = time.perf_counter() - t0

    name = time.strftime("bench-%Y%m%d-%H%M%S")
    config = load_config(ROOT / "configs" / "default.yaml", [f"output_dir={ROOT / 'bench-results'}", f"name={name}", *args.overrides])
    start = time.perf_counter()
    result = run(config)
    wall = time.perf_counter() - start
    # The runner resets the kernel's peak before each stage (to record the stage's own), which also lowers
    # getrusage's figure: the run's peak is the highest of the stages' peaks.
    stage_peaks = [mib for row in result.iterations for mib in row.get("peak_rss_mib", {}).values()]
    peak_mb = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *stage_peaks])  # Linux: KiB

    per_stage: dict[str, float] = defaultdict(float)
    for row in result.iterations:
        for stage, seconds in row["seconds"].items():
            per_stage[stage] += seconds
    console = Console()
    tasks = sorted({t for row in result.iterations for t in row["tasks"]})
    console.print(iteration_table(result.iterations, tasks))
    console.print(timing_table(result.iterations))
    console.print(f"wall {wall:.1f} s ({wall / 60:.2f} min) for {len(result.iterations) - 1} iterations; "
                  f"peak RSS {peak_mb:.0f} MiB; one-time model resolve {convert_s:.1f} s")
    console.print("stage totals (s): " + ", ".join(f"{k} {v:.1f}" for k, v in per_stage.items()))
    peaks = {row["iteration"]: row.get("peak_rss_mib", {}) for row in result.iterations}
    for it, by_stage in peaks.items():
        if by_stage:
            top = max(by_stage, key=by_stage.get)
            console.print(f"iteration {it} peak RSS by stage (MiB): " + ", ".join(f"{k} {v}" for k, v in by_stage.items())
                          + f"  -> highest: {top}")
    out = ROOT / "bench-results" / "default_run.json"
    out.write_text(json.dumps({
        "wall_seconds": wall, "peak_rss_mib": peak_mb, "stage_seconds": per_stage, "stage_peak_rss_mib": peaks,
        "iterations": result.iterations, "stop_reason": result.stop_reason, "python": sys.version,
    }, indent=2, default=str))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
