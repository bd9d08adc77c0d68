"""What the monitor stage asks the models: the diversity probe and the fixed reference judge's score."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from statistics import fmean
from typing import TYPE_CHECKING

from autodidact.engines import Engine, SamplingParams
from autodidact.judges import Judge, JudgeItem
from autodidact.records import Prompt, Sample

if TYPE_CHECKING:
    from autodidact.config import DiversityConfig, GenerationConfig


def diversity_probe(
    engine: Engine, heldout: Sequence[Prompt], d: DiversityConfig, g: GenerationConfig, seed: int, desc: str
) -> list[list[str]]:
    """`d.samples` answers of the current model to each of `d.prompts` held-out prompts (tasks alternating).

    The same prompts, temperature and seed every iteration, so a change in
    diversity comes from the model, not from the draw.
    """
    by_task: dict[str, list[Prompt]] = defaultdict(list)
    for p in heldout:
        by_task[p.task].append(p)
    interleaved = [p for group in zip(*by_task.values()) for p in group] if by_task else []
    prompts = interleaved[: d.prompts]
    params = SamplingParams(d.samples, g.temperature, g.top_p, g.max_new_tokens, seed=seed + 7919)
    outputs = engine.generate([engine.render(p.messages) for p in prompts], params, desc=desc)
    return [[c.text for c in completions] for completions in outputs]


def reference_score(judge: Judge, heldout: Sequence[Prompt], samples: Sequence[Sample]) -> float | None:
    """Mean score a fixed reference judge gives an iteration's held-out answers (the first sample per prompt)."""
    by_id = {p.id: p for p in heldout}
    answers = [s for s in samples if s.prompt_id in by_id and s.index == 0]
    judgments = judge.judge([JudgeItem(s.id, by_id[s.prompt_id], s.text) for s in answers]).judgments
    scores = [j.score for j in judgments if j.score is not None]
    return fmean(scores) if scores else None
