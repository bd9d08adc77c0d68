"""Reverse likelihood: how well a response predicts its own instruction (instruction back-translation).

A response that answers its request tells a reader what the request was. The judge measures it as
pointwise mutual information per instruction token, teacher-forced with the model itself:

    PMI = [log P(instruction | "Here is a response: ... Write the request it answers.")
           - log P(instruction | "Write the request it answers.")] / instruction tokens

and scores 10 x sigmoid(PMI): 5 when the response tells nothing about the instruction. The
instruction is the prompt's last user message. Cost: one forward pass per sample plus one per
question (the prior), each over the back-translation prompt and the instruction.

A response that restates its instruction predicts it best of all: this signal rewards echoing,
which a task's verifier does not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from autodidact.engines import CountsTokens, Engine, request_error
from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.judges.prompts import backtranslation_prompt
from autodidact.records import Judgment


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class ReverseLikelihoodJudge:
    """Scores each response by how much it raises the probability of its own instruction.

    A call's `stats`: mean_pmi (per token) over the scored items.
    """

    name = "reverse_likelihood"
    relative = False

    def __init__(self, engine: Engine):
        if not isinstance(engine, CountsTokens):
            raise AutodidactError(
                "judge.method reverse_likelihood needs an in-process (transformers) engine: it scores the whole "
                "instruction token by token, which a server does not; set judge.model to null or a local model."
            )
        self.engine = engine

    def _turn(self, response: str | None) -> str:
        return self.engine.render([{"role": "user", "content": backtranslation_prompt(response)}])

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One 0-10 judgment per item; one engine call per question, never a grid of all instructions."""
        groups: dict[str, list[int]] = {}
        for idx, item in enumerate(items):
            groups.setdefault(item.prompt.id, []).append(idx)
        judgments: list[Judgment | None] = [None] * len(items)
        pmis = []
        for members in groups.values():
            for m, (judgment, pmi) in zip(members, self._judge_question([items[m] for m in members])):
                judgments[m] = judgment
                if pmi is not None:
                    pmis.append(pmi)
        stats = {"mean_pmi": math.fsum(pmis) / len(pmis)} if pmis else {}
        return JudgeResult([j for j in judgments if j is not None], stats)

    def _judge_question(self, items: Sequence[JudgeItem]) -> list[tuple[Judgment, float | None]]:
        """The samples of one question, scored against its one instruction (the last row: the prior), with their PMI."""
        instruction = items[0].prompt.text
        prompts = [self._turn(item.response) for item in items] + [self._turn(None)]
        try:
            if not instruction.strip():
                raise ValueError("the prompt has no instruction to predict")
            table = self.engine.continuation_logprobs(prompts, [instruction], desc="reverse likelihood")
        except ValueError as err:  # an instruction that does not tokenize after the turn: no judgment, visibly
            error = f"reverse likelihood: {err}"
            return [(Judgment(item.sample_id, self.name, None, error=error), None) for item in items]
        tokens = max(1, self.engine.count_tokens(instruction))
        prior = table[-1]
        return [self._judgment(item, row, prior, tokens) for item, row in zip(items, table)]

    def _judgment(
        self, item: JudgeItem, row: Sequence[float], prior: Sequence[float], tokens: int
    ) -> tuple[Judgment, float | None]:
        failure = request_error(row) or request_error(prior)
        if failure:
            return Judgment(item.sample_id, self.name, None, error=f"judge engine: {failure}"), None
        if not (math.isfinite(row[0]) and math.isfinite(prior[0])):
            error = "the engine gave the instruction no probability (-inf)"
            return Judgment(item.sample_id, self.name, None, error=error), None
        pmi = (row[0] - prior[0]) / tokens
        raw = json.dumps({
            "pmi": round(pmi, 6),
            "logp_given_response": round(row[0], 4),
            "logp_prior": round(prior[0], 4),
            "tokens": tokens,
        })
        return Judgment(item.sample_id, self.name, 10.0 * sigmoid(pmi), raw=raw), pmi
