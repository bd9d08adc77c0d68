"""The policy in-process (transformers) vs on llama.cpp's OpenAI-compatible server: the same workload.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_server.py [--prompts 16 --samples 4 --max-new-tokens 64]

The workload: `--prompts` prompts of the default tasks x `--samples` samples x up to
`--max-new-tokens` new tokens at the default temperature, then one log-probability judge pass
(the direct 0-10 judge) over every sample. It runs on

1. `TransformersEngine` in this process (the bundled model as the loop loads it, float32);
2. `ServerPolicyEngine` (the `OpenAIEngine`, prompts rendered here) against
   `python -m llama_cpp.server` on the bundled Q4_1 GGUF: what the server runs at iteration 0;
3. the same server on a float16 GGUF of the same weights, written by `write_gguf`: what it runs
   after a 'merged' reload.

Tokens are counted with the policy's tokenizer on every engine. Prints a table and writes
bench-results/server.json, with the machine's load average before and after: the numbers are only
comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
console = Console()


def run_workload(engine, prompts, args) -> dict[str, float]:
    """Generate, then judge every sample; tokens/s and judgments/s."""
    from autodidact.engines import SamplingParams
    from autodidact.judges import JudgeItem
    from autodidact.judges.direct import DirectScoreJudge

    params = SamplingParams(args.samples, 0.8, 1.0, args.max_new_tokens, seed=0)
    start = time.perf_counter()
    outputs = engine.generate([engine.render(p.messages) for p in prompts], params, desc="generating")
    generate_s = time.perf_counter() - start
    tokens = sum(c.num_tokens for completions in outputs for c in completions)
    pairs = zip(prompts, outputs, strict=True)
    items = [JudgeItem(f"{p.id}-{k}", p, c.text) for p, cs in pairs for k, c in enumerate(cs)]
    start = time.perf_counter()
    judgments = DirectScoreJudge(engine, mode="logprobs").judge(items).judgments
    judge_s = time.perf_counter() - start
    scored = [j.score for j in judgments if j.score is not None]
    return {
        "samples": len(items),
        "generated_tokens": tokens,
        "generate_s": round(generate_s, 2),
        "tokens_per_s": round(tokens / generate_s, 1),
        "judge_s": round(judge_s, 2),
        "judgments_per_s": round(len(judgments) / judge_s, 2),
        "judged": len(scored),
        "mean_score": round(sum(scored) / len(scored), 2) if scored else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight against the server")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-f16", action="store_true", help="skip the float16 GGUF server")
    parser.add_argument("--skip-server", action="store_true", help="only the in-process engine")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "server.json"))
    args = parser.parse_args()

    from autodidact.config import validate_config
    from autodidact.engines import TransformersEngine
    from autodidact.engines.serving import build_policy_engine
    from autodidact.models import bundled_gguf, load_model
    from autodidact.models.gguf_export import write_gguf
    from autodidact.tasks import get_task
    from llama_server import LlamaServer

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    half = args.prompts // 2
    prompts = [p for name in ("arithmetic", "instructions") for p in get_task(name).build(200, 48, seed=0)[0][:half]]
    model, tokenizer = load_model("default", "float32", "cpu")
    results: dict = {
        "workload": {"prompts": len(prompts), "samples_per_prompt": args.samples, "max_new_tokens": args.max_new_tokens,
                     "temperature": 0.8, "judge": "direct, logprobs"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "load_average_before": os.getloadavg()},
        "engines": {},
    }

    console.rule("in-process transformers engine")
    engine = TransformersEngine(model, tokenizer)
    label = f"transformers (float32, in-process, {torch.get_num_threads()} torch threads)"
    results["engines"][label] = run_workload(engine, prompts, args)

    with tempfile.TemporaryDirectory() as tmp:
        ggufs = {} if args.skip_server else {"llama.cpp server (Q4_1, the bundled GGUF)": bundled_gguf()}
        if not (args.skip_f16 or args.skip_server):
            ggufs["llama.cpp server (float16 GGUF, as after a 'merged' reload)"] = write_gguf(
                model, bundled_gguf(), Path(tmp) / "f16.gguf", "float16")
        del model, engine
        for i, (label, gguf) in enumerate(ggufs.items()):
            console.rule(label)
            workdir = Path(tmp) / f"server-{i}"
            workdir.mkdir()
            server = LlamaServer(gguf, workdir)
            try:
                config = validate_config({"model": {"engine": "server", "server": {
                    "url": server.url, "concurrency": args.concurrency}}})
                results["engines"][label] = run_workload(build_policy_engine(config, None, tokenizer), prompts, args)
            finally:
                server.stop()
    results["machine"]["load_average_after"] = os.getloadavg()

    table = Table("engine", "tokens", "gen s", "tokens/s", "judge s", "judgments/s", "judged", "mean score")
    for label, r in results["engines"].items():
        cells = [r[k] for k in ("generated_tokens", "generate_s", "tokens_per_s", "judge_s", "judgments_per_s")]
        table.add_row(label, *map(str, cells), f"{r['judged']}/{r['samples']}", str(r["mean_score"]))
    console.print(table)
    console.print(f"load average before {results['machine']['load_average_before']}, "
                  f"after {results['machine']['load_average_after']} on {os.cpu_count()} CPUs")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
