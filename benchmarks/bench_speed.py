"""Speed of every stage against the machine's ceiling and the tools a user would use instead.

    make bench            # or: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_speed.py [--quick]

One process, the bundled model, a fixed workload (64 prompts x 4 samples x
up to 64 new tokens, then judging and one epoch of training on the selected
samples). Prints a table and writes bench-results/speed.json. Sections:

1. generation tokens/s: the engine, the naive baseline, llama.cpp (if installed)
2. the ceiling: measured matmul FLOP/s -> tokens/s = FLOP/s / (2 x parameters)
3. judging: log-probability vs generative judgments/s, and their agreement
4. training: trained (non-padding) tokens/s vs the training ceiling
5. one full iteration of the real loop (default config): seconds per stage
6. the whole loop vs TRL's GRPOTrainer: completions per minute
7. scaling: iteration time at 1x/2x/4x prompts and 2x tokens; memory over 5 iterations

Rates of the baselines are measured on a subset of the prompts
(--baseline-prompts, --grpo-prompts): a rate does not need the whole
workload, and the naive baseline and GRPO are slow.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from bench_workload import Workload, matmul_flops, model_shapes, spearman  # noqa: E402

from autodidact.memory import reset_peak_rss, rss_mib  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def section(title: str) -> None:
    console.rule(title)


# --- sections -----------------------------------------------------------------


def bench_ceiling(w: Workload) -> dict:
    section("2. ceiling")
    dtype = next(w.policy.parameters()).dtype
    flops = matmul_flops(dtype, model_shapes(w.policy.get_base_model(), rows=256))
    params = sum(p.numel() for n, p in w.policy.get_base_model().named_parameters())
    peak = max(flops.values())
    out = {
        "dtype": str(dtype).removeprefix("torch."),
        "matmul_flops": flops,
        "peak_flops": peak,
        "parameters": params,
        "generation_ceiling_tokens_per_s": peak / (2 * params),
        # LoRA: forward (2N) + gradients w.r.t. activations (2N); frozen weights get no gradient.
        "training_ceiling_tokens_per_s": peak / (4 * params),
    }
    console.print({k: v for k, v in out.items() if k != "matmul_flops"})
    return out


def bench_generation(w: Workload, args) -> dict:
    section("1. generation")
    texts = [w.engine.render(p.messages) for p in w.prompts]
    w.engine.generate(texts[:2], w.params(8))  # warm-up: first-call allocations are not throughput
    start = time.perf_counter()
    outputs = w.engine.generate(texts, w.params())
    seconds = time.perf_counter() - start
    tokens = sum(c.num_tokens for cs in outputs for c in cs)
    rate = tokens / seconds
    out = {"engine": {"prompts": len(texts), "sequences": len(texts) * w.n, "tokens": tokens, "seconds": seconds, "tokens_per_s": rate}}
    console.print(f"engine: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.0f} tokens/s")

    from autodidact.models import load_model

    # The transformers peers run the plain base model (no LoRA wrappers), as the engine runs a merged copy.
    base, _ = load_model("default", w.config.model.dtype, "cpu")
    sampling = {"n": w.n, "temperature": w.temperature, "top_p": w.top_p, "max_new_tokens": w.max_new}
    messages = [p.messages for p in w.prompts]
    out.update(peers.generation_peers(base, w.tokenizer, texts, messages, sampling, args.baseline_prompts))
    del base
    for key, row in out.items():
        rate = row.get("error") or f"{row['tokens']} tokens in {row['seconds']:.1f} s = {row['tokens_per_s']:.0f} tokens/s"
        console.print(f"{key} ({row['prompts']} prompts): {rate}")
    w.samples = [(p, c.text, c.num_tokens) for p, cs in zip(w.prompts, outputs) for c in cs]
    return out


def bench_judging(w: Workload) -> dict:
    section("3. judging")
    from autodidact.judges import JudgeItem
    from autodidact.judges.direct import DirectScoreJudge
    from autodidact.config.judge_methods import RubricJudgeConfig
    from autodidact.judges.rubric import RubricJudge

    items = [JudgeItem(f"s{i}", p, text) for i, (p, text, _) in enumerate(w.samples)]
    judges = {
        "logprobs": w.judge,
        "generate": DirectScoreJudge(w.engine, mode="generate"),
        "rubric_generate": RubricJudge(w.engine, criteria=RubricJudgeConfig().criteria, mode="generate", reasoning_tokens=96),
    }
    out, scores = {}, {}
    for name, judge in judges.items():
        start = time.perf_counter()
        judgments = judge.judge(items).judgments
        seconds = time.perf_counter() - start
        scores[name] = [j.score for j in judgments]
        failed = sum(j.score is None for j in judgments)
        out[name] = {"judgments": len(items), "seconds": seconds, "judgments_per_s": len(items) / seconds, "failed": failed}
        console.print(f"{name}: {len(items) / seconds:.1f} judgments/s ({failed} failed)")
    for other in ("generate", "rubric_generate"):
        both = [(a, b) for a, b in zip(scores["logprobs"], scores[other]) if a is not None and b is not None]
        out[f"agreement_logprobs_vs_{other}"] = {
            "spearman": spearman([a for a, _ in both], [b for _, b in both]),
            "both_valid": len(both),
            "best_sample_same": _same_best(w, scores["logprobs"], scores[other]),
        }
    w.judgments = scores["logprobs"]
    return out


def _same_best(w: Workload, a: list, b: list) -> float | None:
    """Share of prompts where both judges pick the same best sample."""
    same = total = 0
    for start in range(0, len(a), w.n):
        ga, gb = a[start : start + w.n], b[start : start + w.n]
        if any(x is None for x in ga + gb):
            continue
        total += 1
        same += ga.index(max(ga)) == gb.index(max(gb))
    return same / total if total else None


def bench_training(w: Workload, ceiling: dict) -> dict:
    section("4. training")
    from autodidact.records import SFTExample
    from autodidact.training import train_sft

    examples = []
    for start in range(0, len(w.samples), w.n):
        group = [(s, w.judgments[start + k]) for k, s in enumerate(w.samples[start : start + w.n]) if w.judgments[start + k] is not None]
        if group:
            (prompt, text, _), score = max(group, key=lambda x: x[1])
            if text.strip():
                examples.append(SFTExample(f"s{start}", prompt.id, prompt.messages, text.strip(), score))
    result = train_sft(w.policy, w.tokenizer, examples, w.config.training, seed=0)
    rate = result.tokens / result.seconds
    out = {
        "examples": result.examples,
        "tokens": result.tokens,
        "seconds": result.seconds,
        "tokens_per_s": rate,
        "fraction_of_ceiling": rate / ceiling["training_ceiling_tokens_per_s"],
    }
    console.print(out)
    return out


def bench_full_iteration() -> dict:
    section("5. one full iteration of the loop (default config)")
    from autodidact.config import load_config
    from autodidact.loop import run

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(ROOT / "configs" / "default.yaml", [f"output_dir={tmp}", "name=bench", "stopping.max_iterations=1"])
        start = time.perf_counter()
        result = run(config)
        wall = time.perf_counter() - start
    seconds = {row["iteration"]: row["seconds"] for row in result.iterations}
    out = {"wall_seconds_with_baseline_eval": wall, "stage_seconds": seconds, "iteration_1_seconds": sum(seconds[1].values())}
    console.print(out)
    return out


def bench_grpo(w: Workload, args, our: dict) -> dict:
    section("6. whole loop vs TRL GRPOTrainer")
    from autodidact.models import load_model

    t = w.config.training
    lora = {"r": t.lora_r, "lora_alpha": t.lora_alpha, "lora_dropout": t.lora_dropout, "target_modules": t.target_modules}
    base, tok = load_model("default", w.config.model.dtype, "cpu")

    def reward(users: list[str], texts: list[str]) -> list[float]:
        from autodidact.judges import JudgeItem
        from autodidact.records import Prompt

        items = [JudgeItem(str(i), Prompt(str(i), "bench", "train", [{"role": "user", "content": u}]), t) for i, (u, t) in enumerate(zip(users, texts))]
        return [j.score if j.score is not None else 0.0 for j in w.judge.judge(items).judgments]  # GRPO needs a number

    msgs = [p.messages for p in w.prompts[: args.grpo_prompts]]
    grpo = peers.grpo_completions_per_minute(base, tok, msgs, reward, lora, w.n, w.max_new, w.temperature)
    del base
    out = {"grpo": grpo, "autodidact": our, "ratio": our["completions_per_minute"] / grpo["completions_per_minute"]}
    console.print(out)
    return out


def bench_scaling(w: Workload, args) -> dict:
    section("7. scaling and memory")
    base = args.scaling_prompts // 2

    def prompts(mult: int):
        return [p for pool in w.pool.values() for p in pool[: base * mult]]

    points = {}
    for name, mult, tokens in (("1x", 1, None), ("2x_prompts", 2, None), ("4x_prompts", 4, None), ("2x_tokens", 1, 2 * w.max_new)):
        points[name] = w.iteration(prompts(mult), max_new=tokens, seed=11)
        console.print(f"{name}: {points[name]['total']:.1f} s  {points[name]}")
    one = points["1x"]["total"]
    memory = []
    for i in range(args.memory_iterations):
        reset_peak_rss()
        w.iteration(prompts(1), seed=100 + i)
        current, peak = rss_mib()
        memory.append({"iteration": i + 1, "rss_mib": current, "peak_mib": peak})
        console.print(memory[-1])
    return {
        "points": points,
        "time_ratio_2x_prompts": points["2x_prompts"]["total"] / one,
        "time_ratio_4x_prompts": points["4x_prompts"]["total"] / one,
        "time_ratio_2x_tokens": points["2x_tokens"]["total"] / one,
        "memory": memory,
    }


# --- report -------------------------------------------------------------------


def summary_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, met) for every figure with a target, and a few without."""
    rows: list[tuple[str, str, str, str]] = []

    def row(name, value, target="", ok=None):
        rows.append((name, value, target, "" if ok is None else ("yes" if ok else "NO")))

    g, c = results.get("generation"), results.get("ceiling")
    if g:
        eng = g["engine"]["tokens_per_s"]
        row("engine generation", f"{eng:.0f} tok/s ({g['engine']['sequences']} sequences)")
        for peer_row in peers.generation_rows(g):
            row(*peer_row)
        if c:
            frac = eng / c["generation_ceiling_tokens_per_s"]
            row("share of generation ceiling", f"{100 * frac:.1f}% of {c['generation_ceiling_tokens_per_s']:.0f} tok/s", ">= 35%", frac >= 0.35)
    if j := results.get("judging"):
        ratio = j["logprobs"]["judgments_per_s"] / j["generate"]["judgments_per_s"]
        row("logprob vs generative judge", f"{j['logprobs']['judgments_per_s']:.1f} vs {j['generate']['judgments_per_s']:.1f} /s -> {ratio:.1f}x", ">= 10x", ratio >= 10)
        ratio = j["logprobs"]["judgments_per_s"] / j["rubric_generate"]["judgments_per_s"]
        row("logprob vs rubric (CoT) judge", f"{j['rubric_generate']['judgments_per_s']:.1f} /s -> {ratio:.1f}x")
        agree = j["agreement_logprobs_vs_generate"]
        rho, same = agree["spearman"], agree["best_sample_same"]
        row("logprob/generative agreement", f"Spearman {'-' if rho is None else f'{rho:.2f}'}, same best sample {'-' if same is None else f'{same:.2f}'} ({agree['both_valid']} both valid)")
    if t := results.get("training"):
        row("training", f"{t['tokens_per_s']:.0f} tok/s = {100 * t['fraction_of_ceiling']:.1f}% of ceiling", ">= 40%", t["fraction_of_ceiling"] >= 0.4)
    if f := results.get("full_iteration"):
        row("one default iteration", f"{f['iteration_1_seconds']:.0f} s", "<= 180 s", f["iteration_1_seconds"] <= 180)
    if p := results.get("vs_grpo"):
        row("loop vs TRL GRPO", f"{p['autodidact']['completions_per_minute']:.0f} vs {p['grpo']['completions_per_minute']:.0f} /min -> {p['ratio']:.1f}x", ">= 4x", p["ratio"] >= 4)
    if s := results.get("scaling"):
        for key, expect in (("time_ratio_2x_prompts", 2), ("time_ratio_4x_prompts", 4)):
            ok = abs(s[key] / expect - 1) <= 0.15
            row(key.replace("_", " "), f"{s[key]:.2f} (linear: {expect})", "within 15%", ok)
        row("time ratio 2x tokens", f"{s['time_ratio_2x_tokens']:.2f}")
        peaks = [m["peak_mib"] for m in s["memory"]]
        row(f"peak RSS iteration 1 -> {len(peaks)}", f"{peaks[0]:.0f} -> {peaks[-1]:.0f} MiB", "flat", peaks[-1] <= peaks[0] * 1.05)
    return rows


def summary_table(rows) -> Table:
    table = Table(title="AutoDidact speed (bundled model, this machine)")
    for col in ("measure", "value", "target", "met"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    return table


def write_markdown(rows, path: Path, when: str) -> None:
    """Replace the table between the speed markers of `path` (docs/SPEED.md)."""
    start, end = "<!-- speed:start -->", "<!-- speed:end -->"
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        return
    lines = [start, f"Measured {when} by `make bench`.", "", "| measure | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + "\n".join(lines) + "\n" + end + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--baseline-prompts", type=int, default=16, help="prompts for the one-at-a-time peers")
    parser.add_argument("--grpo-prompts", type=int, default=16)
    parser.add_argument("--scaling-prompts", type=int, default=32, help="prompts at the 1x scaling point")
    parser.add_argument("--memory-iterations", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["judging", "training", "iteration", "grpo", "scaling"])
    parser.add_argument("--quick", action="store_true", help="a small workload to check the script runs")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.baseline_prompts, args.grpo_prompts, args.scaling_prompts, args.memory_iterations = 8, 2, 2, 4, 2
        args.max_new_tokens = 16

    from autodidact.apps.log_setup import configure_logging
    from autodidact.models import resolve_model

    configure_logging(quiet=True)
    resolve_model("default")  # the one-time GGUF conversion is not part of any figure
    torch.manual_seed(0)
    w = Workload(args)
    results: dict = {"workload": {"prompts": len(w.prompts), "samples": w.n, "max_new_tokens": w.max_new}, "threads": torch.get_num_threads()}
    results["ceiling"] = bench_ceiling(w)
    results["generation"] = bench_generation(w, args)
    if "judging" not in args.skip:
        results["judging"] = bench_judging(w)
        if "training" not in args.skip:
            results["training"] = bench_training(w, results["ceiling"])
            seconds = results["generation"]["engine"]["seconds"] + results["judging"]["logprobs"]["seconds"] + results["training"]["seconds"]
            ours = {"completions": len(w.samples), "seconds": seconds, "completions_per_minute": 60 * len(w.samples) / seconds}
            if "grpo" not in args.skip:
                results["vs_grpo"] = bench_grpo(w, args, ours)
    if "scaling" not in args.skip:
        results["scaling"] = bench_scaling(w, args)
    if "iteration" not in args.skip:
        results["full_iteration"] = bench_full_iteration()
    rows = summary_rows(results)
    console.print(summary_table(rows))
    if not args.quick and not args.skip:
        write_markdown(rows, ROOT / "docs" / "SPEED.md", time.strftime("%Y-%m-%d"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
