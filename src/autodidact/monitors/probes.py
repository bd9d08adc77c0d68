"""What the monitor stage asks the models: the diversity and vote probes, and the fixed reference judge's score."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from statistics import fmean
from typing import TYPE_CHECKING

from autodidact.engines import Engine, SamplingParams
from autodidact.judges import Judge, JudgeItem
from autodidact.judges.consistency import load_extractor
from autodidact.monitors.signal_decay import Vote, majority_vote, passes
from autodidact.records import Prompt, Sample
from autodidact.tasks.answering import verify_all

if TYPE_CHECKING:
    from autodidact.config import DiversityConfig, GenerationConfig, SignalDecayConfig
    from autodidact.tasks import Task


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


def vote_probe(
    engine: Engine,
    heldout: Sequence[Prompt],
    tasks: Mapping[str, Task],
    extractors: Mapping[str, str],
    s: SignalDecayConfig,
    g: GenerationConfig,
    seed: int,
    desc: str,
) -> list[Vote]:
    """The votes of the current model on the first `s.prompts` held-out prompts of each task in `extractors`.

    Each prompt gets `s.samples` answers (else generation.samples_per_prompt) at generation.temperature with
    a fixed seed, so a change between iterations comes from the model, not from the draw. The task's verifier
    grades the first sample that gave the majority answer: a held-out answer, never trained on.
    """
    prompts = [p for name in extractors for p in [q for q in heldout if q.task == name][: s.prompts]]
    if not prompts:
        return []
    n = s.samples or g.samples_per_prompt
    params = SamplingParams(n, g.temperature, g.top_p, g.max_new_tokens, seed=seed + 104_729)
    outputs = engine.generate([engine.render(p.messages) for p in prompts], params, desc=desc)
    votes = [
        majority_vote(p.id, [c.text for c in completions], load_extractor(extractors[p.task]))
        for p, completions in zip(prompts, outputs, strict=True)
    ]
    texts = {p.id: outputs[i][v.first].text for i, (p, v) in enumerate(zip(prompts, votes)) if v.first is not None}
    verdicts = verify_all(tasks, {p.id: p for p in prompts}, {pid: (pid, text) for pid, text in texts.items()})
    return [replace(v, right=passes(verdicts.get(v.prompt_id))) for v in votes]


def reference_score(judge: Judge, heldout: Sequence[Prompt], samples: Sequence[Sample]) -> float | None:
    """Mean score a fixed reference judge gives an iteration's held-out answers (the first sample per prompt)."""
    by_id = {p.id: p for p in heldout}
    answers = [s for s in samples if s.prompt_id in by_id and s.index == 0]
    judgments = judge.judge([JudgeItem(s.id, by_id[s.prompt_id], s.text) for s in answers]).judgments
    scores = [j.score for j in judgments if j.score is not None]
    return fmean(scores) if scores else None
