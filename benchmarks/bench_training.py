"""SFT trained tokens/s before and after the fast path, side by side in one process, LoRA and full fine-tuning.

    HF_HUB_OFFLINE=1 .venv/bin/python -u benchmarks/bench_training.py [--epochs 1] [--full-examples 32]

The workload: the bench prompts (benchmarks/bench_workload.py, 64 by default) and their own completions from one
`engine.generate` call (1 sample, up to 64 new tokens) as SFT examples, trained with the default config
(batch 8). "before" is the padded path with the LM head on every position (`train_sft(..., padding_free=False,
labelled_head=False)`); "head" adds only the labelled-positions LM head; "after" adds padding-free
batches too). Every variant starts from the same weights and seed, so their losses must agree; trained tokens
are counted alike (non-padding prompt + completion tokens, all epochs). Variants alternate (before, after, ...)
so a slow spell of this noisy machine hits both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_workload import ROOT, Workload  # noqa: E402

VARIANTS = {"before": (False, False), "head": (False, True), "after": (True, True)}


def examples_of(w: Workload, cache: Path) -> list:
    """One completion per bench prompt, from the engine itself, as SFT examples; kept in `cache` for the next run."""
    from autodidact.records import SFTExample

    key = [p.id for p in w.prompts]
    if cache.exists() and (saved := json.loads(cache.read_text()))["prompts"] == key:
        texts = saved["completions"]
    else:
        outputs = w.engine.generate([w.engine.render(p.messages) for p in w.prompts], w.params())
        texts = [cs[0].text.strip() for cs in outputs]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"prompts": key, "completions": texts}))
    return [SFTExample(f"s{i}", p.id, p.messages, text, 9.0) for i, (p, text) in enumerate(zip(w.prompts, texts)) if text]


def padding_share(tokenizer, examples, batch_size: int) -> float:
    """Fraction of a padded batch's positions that are padding, in the trainer's order (approximate: unshuffled)."""
    texts = [tokenizer.apply_chat_template([*e.messages, {"role": "assistant", "content": e.completion}], tokenize=False) for e in examples]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    padded = sum(max(lengths[i : i + batch_size]) * len(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size))
    return 1 - sum(lengths) / padded


def measure(policy, tokenizer, examples, training, variants: list[str], repeats: int) -> dict[str, list]:
    """variant -> [(tokens/s, loss)] over `repeats` alternating rounds, each from the same starting weights."""
    from autodidact.training import train_sft

    start = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    out = {v: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            with torch.no_grad():
                for n, p in policy.named_parameters():
                    if n in start:
                        p.copy_(start[n])
            padding_free, labelled_head = VARIANTS[v]
            r = train_sft(policy, tokenizer, examples, training, seed=0, padding_free=padding_free, labelled_head=labelled_head)
            out[v].append((r.tokens / r.seconds, r.loss, r.tokens, r.seconds))
            print(f"  {v:7s} {r.tokens / r.seconds:7.1f} trained tok/s  ({r.tokens} tokens, {r.seconds:.1f} s, {r.steps} steps, loss {r.loss:.6f})", flush=True)
    return out


def report(name: str, out: dict[str, list]) -> None:
    best = {v: max(x[0] for x in runs) for v, runs in out.items()}
    losses = {v: runs[0][1] for v, runs in out.items()}
    line = "  ".join(f"{v} {best[v]:.1f}" for v in out)
    print(f"{name}: best tok/s {line}  ->  after/before {best['after'] / best['before']:.2f}x", flush=True)
    print(f"{name}: loss " + "  ".join(f"{v} {loss:.6f}" for v, loss in losses.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=1.0, help="the default config trains 2; 1 keeps the run short")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds per variant (the best is reported)")
    parser.add_argument("--full-examples", type=int, default=32, help="examples for full fine-tuning (0: skip it)")
    parser.add_argument("--cache", default=str(ROOT / "bench-results" / "training-examples.json"), help="generated examples")
    parser.add_argument("--variants", nargs="+", default=["before", "after"], choices=list(VARIANTS))
    args = parser.parse_args()
    args.samples, args.scaling_prompts = 1, 0

    from autodidact.training.policy import policy_from

    t = time.perf_counter()
    w = Workload(args)
    examples = examples_of(w, Path(args.cache))
    training = w.config.training.model_copy(update={"epochs": args.epochs})
    print(f"{len(examples)} examples from {len(w.prompts)} prompts in {time.perf_counter() - t:.0f} s; "
          f"padding share of padded batches of {training.batch_size}: {padding_share(w.tokenizer, examples, training.batch_size):.0%}",
          flush=True)
    print(f"LoRA (r={training.lora_r}), {len(examples)} examples, {args.epochs:g} epoch(s):", flush=True)
    report("lora", measure(w.policy, w.tokenizer, examples, training, args.variants, args.repeats))
    if args.full_examples:
        full = training.model_copy(update={"finetune": "full"})
        m = w.config.model
        del w.engine, w.judge
        policy, tokenizer = policy_from(m.name, None, full, m.dtype, m.device)
        print(f"full fine-tuning, {args.full_examples} examples, {args.epochs:g} epoch(s):", flush=True)
        report("full", measure(policy, tokenizer, examples[: args.full_examples], full, args.variants, args.repeats))


if __name__ == "__main__":
    main()
