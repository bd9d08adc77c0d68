"""What benchmarks/bench_speed.py measures on: the machine's matmul ceiling, memory and rank helpers, and the
`Workload` (the bundled model, its engine, judge and prompts, and one iteration through the loop's own functions).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


# --- ceiling ------------------------------------------------------------------


def matmul_flops(dtype: torch.dtype, shapes: list[tuple[int, int, int]], repeats: int = 10) -> dict[str, float]:
    """FLOP/s of (m x k) @ (k x n) for each shape, best of `repeats`."""
    out = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        out[f"{m}x{k}x{n}"] = 2 * m * k * n / best
    return out


def model_shapes(model, rows: int) -> list[tuple[int, int, int]]:
    cfg = model.config
    h, i, v = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    return [(rows, h, i), (rows, i, h), (rows, h, h), (rows, h, v), (2048, 2048, 2048)]


# --- helpers ------------------------------------------------------------------


def spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    rx = torch.tensor(x).argsort().argsort().float()
    ry = torch.tensor(y).argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])


class Workload:
    """The bench's model, engine, judge and prompts, shared by the sections."""

    def __init__(self, args):
        from autodidact.config import load_config
        from autodidact.engines import TransformersEngine
        from autodidact.judges.direct import DirectScoreJudge
        from autodidact.tasks import get_task
        from autodidact.training import load_policy

        self.config = load_config(ROOT / "configs" / "default.yaml")
        self.policy, self.tokenizer = load_policy(self.config, None)
        self.engine = TransformersEngine(self.policy, self.tokenizer, batch_size=self.config.generation.batch_size)
        self.judge = DirectScoreJudge(self.engine, mode="logprobs", batch_size=self.config.judge.batch_size)
        self.engine.score_batch_size = self.config.judge.batch_size
        half = args.prompts // 2
        size = max(half, 2 * args.scaling_prompts)  # the 4x scaling point takes 4 x scaling_prompts / 2 per task
        self.pool = {name: get_task(name).build(max(200, size), 48, seed=0)[0][:size] for name in self.config.tasks.names}
        self.prompts = [p for prompts in self.pool.values() for p in prompts[:half]]
        self.n, self.max_new = args.samples, args.max_new_tokens
        self.temperature, self.top_p = self.config.generation.temperature, self.config.generation.top_p

    def params(self, max_new: int | None = None, seed: int = 0):
        from autodidact.engines import SamplingParams

        return SamplingParams(self.n, self.temperature, self.top_p, max_new or self.max_new, seed=seed)

    def iteration(self, prompts, max_new: int | None = None, seed: int = 0) -> dict[str, float]:
        """generate -> judge -> select -> train with the loop's own functions; seconds per stage."""
        from autodidact.judges import JudgeItem
        from autodidact.records import Sample
        from autodidact.selection import select
        from autodidact.training import train_sft

        t = {}
        start = time.perf_counter()
        outputs = self.engine.generate([self.engine.render(p.messages) for p in prompts], self.params(max_new, seed))
        samples = [Sample(f"{p.id}-{k}", p.id, 1, k, c.text, c.num_tokens) for p, cs in zip(prompts, outputs) for k, c in enumerate(cs)]
        t["generate"] = time.perf_counter() - start
        by_id = {p.id: p for p in prompts}
        start = time.perf_counter()
        judgments = self.judge.judge([JudgeItem(s.id, by_id[s.prompt_id], s.text) for s in samples]).judgments
        t["judge"] = time.perf_counter() - start
        start = time.perf_counter()
        examples = select(by_id, samples, judgments, "top_k", 1)
        t["select"] = time.perf_counter() - start
        start = time.perf_counter()
        result = train_sft(self.policy, self.tokenizer, examples, self.config.training, seed=seed)
        t["train"] = time.perf_counter() - start
        t["total"] = sum(t.values())
        t["samples"] = len(samples)
        t["generated_tokens"] = sum(s.num_tokens for s in samples)
        t["trained_tokens"] = result.tokens
        return t
