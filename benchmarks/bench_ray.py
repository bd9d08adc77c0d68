"""Generation over Ray: the same workload in one process, on 1 Ray worker and on 2.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ray.py [--model default] [--workers 1,2]

Each Ray run starts a local cluster with one CPU per worker (so a worker's
torch uses one thread), loads the replicas, warms them up, then times
`generate` over the whole workload (best of --repeats). The in-process run
uses --threads torch threads (default 1, like one worker). Every run's samples are compared with the
single-process engine's: they must be identical. Prints a table and writes
bench-results/ray.json. Startup (cluster + model load per replica) is
reported apart: it is paid once per run, not per iteration.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from autodidact.config import RunConfig
from autodidact.distributed.ray_engine import RayEngine
from autodidact.engines import SamplingParams, TransformersEngine
from autodidact.progress import set_quiet
from autodidact.training import init_adapters, load_policy

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def workload(engine, count: int) -> list[str]:
    """Rendered prompts of mixed length (so batches pad differently)."""
    texts = [
        f"What is {7 * i % 97} + {11 * i % 89}? Answer with just the number."
        if i % 2
        else f"Write one short sentence about the number {i} and why it might matter to a gardener."
        for i in range(count)
    ]
    return [engine.render([{"role": "user", "content": t}]) for t in texts]


def timed_generate(engine, prompts, params, repeats: int) -> tuple[float, list]:
    """Best-of-`repeats` seconds (the machine may be shared) and the samples, which must not vary."""
    best, first = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = engine.generate(prompts, params)
        best = min(best, time.perf_counter() - start)
        assert first is None or out == first, "two runs of one request differ"
        first = out
    return best, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model spec (default: the bundled SmolLM2-135M)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per decoding batch (a shard is whole batches)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process run (a Ray worker has 1)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per mode; the best counts")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ray.json"))
    args = parser.parse_args()
    set_quiet(True)
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()[0]

    base = RunConfig(model={"name": args.model}, generation={"batch_size": args.batch_size}, distributed={"backend": "ray"})
    params = SamplingParams(n=args.samples, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0)
    policy, tokenizer = load_policy(base, None)
    init_adapters(policy, base.seed)
    local = TransformersEngine(policy, tokenizer, batch_size=args.batch_size)
    prompts = workload(local, args.prompts)
    local.generate(prompts[:2], params)  # warm-up (the merged copy, first-call allocations)
    seconds, reference = timed_generate(local, prompts, params, args.repeats)
    tokens = sum(c.num_tokens for row in reference for c in row)
    rows = [{"mode": "in-process", "workers": 0, "torch_threads": args.threads, "seconds": seconds, "tokens": tokens,
             "tokens_per_s": tokens / seconds, "startup_s": None, "identical": True}]
    dtype = str(next(policy.parameters()).dtype)
    del local, policy

    for workers in [int(w) for w in args.workers.split(",")]:
        config = base.model_copy(update={"distributed": base.distributed.model_copy(update={"workers": workers})})
        start = time.perf_counter()
        with RayEngine.from_config(config, tokenizer) as engine:
            startup = time.perf_counter() - start  # from_config returns once every replica has its model
            engine.generate(prompts[: 4 * workers], params)  # warm-up: first-call allocations on each replica
            seconds, out = timed_generate(engine, prompts, params, args.repeats)
        rows.append({"mode": "ray", "workers": workers, "torch_threads": 1, "seconds": seconds, "tokens": tokens,
                     "tokens_per_s": tokens / seconds, "startup_s": startup, "identical": out == reference})

    table = Table(title=f"generation, {args.prompts} prompts x {args.samples} samples, {os.cpu_count()} CPU cores")
    for col in ("mode", "workers", "seconds", "tokens/s", "startup s", "identical"):
        table.add_column(col)
    for r in rows:
        startup = "-" if r["startup_s"] is None else f"{r['startup_s']:.1f}"
        table.add_row(r["mode"], str(r["workers"]), f"{r['seconds']:.1f}", f"{r['tokens_per_s']:.0f}", startup, str(r["identical"]))
    console.print(table)
    result = {
        "cpu_cores": os.cpu_count(), "model": args.model, "prompts": args.prompts, "samples": args.samples,
        "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "dtype": dtype,
        # Other jobs on the machine take cores from the workers: read the figures against this.
        "load_average_1min": {"start": load_at_start, "end": os.getloadavg()[0]},
        "runs": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
