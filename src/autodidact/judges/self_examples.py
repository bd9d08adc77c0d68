"""The direct judge with self-written examples: the model's own most and least agreed-on answers.

A 0-10 judge does better with graded examples, but this project has no labelled ones. The model's
own samples supply them: within one call, the sample of a prompt that agrees most with that
prompt's other samples (semantic agreement, `judges.agreement`) is shown as a good answer (scored
9), and the one that agrees least as a poor answer (scored 2). An item is shown `shots` such pairs,
each from another prompt: never its own prompt's samples, which would tell it its own agreement.
The prompts with the widest gap between their best and worst sample give the examples first.
Otherwise it is the direct judge (same prompt wording, `mode` and `min_score_mass`); the examples
lengthen each judge prompt by about two questions and two answers per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autodidact.embeddings import Embedder
from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.judges.agreement import agreement_scores, prompt_groups, resolve_embedder
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.judges.direct import generated_judgment, logprob_judgment
from autodidact.judges.prompts import DIRECT_ANSWER_PREFIX, examples_prompt
from autodidact.judges.scoring import SCORES

GOOD_SCORE, POOR_SCORE = 9, 2


@dataclass(frozen=True)
class ExamplePair:
    """One prompt's most and least agreed-on samples, shown as graded examples."""

    prompt_id: str
    question: str
    good: str
    poor: str
    gap: float  # agreement of the good sample minus that of the poor one


def example_pairs(items: Sequence[JudgeItem], agreement: Sequence[float | None]) -> list[ExamplePair]:
    """One pair per prompt whose samples differ in agreement, widest gap first (ties: first prompt first)."""
    pairs = []
    for members in prompt_groups(items).values():
        scored = [m for m in members if agreement[m] is not None]
        if len(scored) < 2:
            continue
        best = max(scored, key=lambda m: agreement[m])  # first of equals: generation order
        worst = min(scored, key=lambda m: agreement[m])
        gap = agreement[best] - agreement[worst]
        if gap > 0 and items[best].response != items[worst].response:
            first = items[best]
            pairs.append(ExamplePair(first.prompt.id, first.prompt.text, first.response, items[worst].response, gap))
    return sorted(pairs, key=lambda p: -p.gap)  # stable: equal gaps keep prompt order


class SelfExamplesJudge:
    """Rates each response 0-10 like the direct judge, after `shots` self-written example pairs of other prompts.

    A call's `stats`: examples_per_item, the mean number of pairs shown (fewer than `shots` when the call
    has too few other prompts with a spread of answers).
    """

    name = "self_examples"
    relative = True  # its examples come from the other prompts' samples in the same call

    def __init__(
        self,
        engine: Engine,
        embedder: str | Embedder = "default",
        shots: int = 1,
        mode: Literal["logprobs", "generate"] = "logprobs",
        min_mass: float = 1e-4,
    ):
        self.engine = engine
        self.embedder = resolve_embedder(embedder)
        self.shots = shots
        self.mode = mode
        self.min_mass = min_mass

    def examples_for(self, prompt_id: str, pairs: Sequence[ExamplePair]) -> list[ExamplePair]:
        """The first `shots` pairs of prompts other than `prompt_id`."""
        return [p for p in pairs if p.prompt_id != prompt_id][: self.shots]

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item, with how many example pairs the prompts showed."""
        pairs = example_pairs(items, agreement_scores(items, self.embedder))
        shown = [self.examples_for(item.prompt.id, pairs) for item in items]
        prompts = [self._prompt(item, chosen) for item, chosen in zip(items, shown)]
        notes = [f"examples from prompts: {', '.join(p.prompt_id for p in chosen) or 'none'}" for chosen in shown]
        stats = {"examples_per_item": sum(map(len, shown)) / len(items)} if items else {}
        if self.mode == "logprobs":
            table = self.engine.continuation_logprobs(prompts, SCORES, desc="judging (self examples)")
            return JudgeResult([
                logprob_judgment(i.sample_id, self.name, lp, self.min_mass, rationale=note)
                for i, lp, note in zip(items, table, notes)
            ], stats)
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
        outputs = self.engine.generate(prompts, params, desc="judging (self examples)")
        return JudgeResult([
            generated_judgment(i.sample_id, self.name, out[0].text, rationale=note, engine_error=request_error(out))
            for i, out, note in zip(items, outputs, notes)
        ], stats)

    def _prompt(self, item: JudgeItem, chosen: Sequence[ExamplePair]) -> str:
        graded = [(p.question, p.good, GOOD_SCORE) for p in chosen], [(p.question, p.poor, POOR_SCORE) for p in chosen]
        examples = [shot for pair in zip(*graded) for shot in pair]  # good then poor, pair by pair
        content = examples_prompt(item.prompt.text, item.response, examples)
        return self.engine.render([{"role": "user", "content": content}]) + DIRECT_ANSWER_PREFIX
