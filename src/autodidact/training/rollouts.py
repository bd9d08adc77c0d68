"""GRPO rollouts: the judge scores each group of completions as the reward, and every one is kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from autodidact.judges import Judge, JudgeItem
from autodidact.records import Prompt, Sample


class RolloutRecorder:
    """GRPO's reward function: the judge scores each group of completions, and every one is recorded.

    Called by the trainer with a prompt group's completions; they become the
    iteration's samples (`it{N}-{prompt}-g{k}`) and judgments, stored by the
    train stage, so monitors and reports see what online training saw.
    """

    def __init__(self, iteration: int, judge: Judge, tokenizer) -> None:
        self.iteration, self.judge, self.tokenizer = iteration, judge, tokenizer
        self.samples: list[Sample] = []
        self.judgments: list = []
        self._count: Counter[str] = Counter()

    def __call__(self, prompts: Sequence[Prompt], texts: Sequence[str]) -> list[float | None]:
        items, batch = [], []
        for prompt, text in zip(prompts, texts, strict=True):
            k = self._count[prompt.id]
            self._count[prompt.id] += 1
            num_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            sample = Sample(f"it{self.iteration}-{prompt.id}-g{k}", prompt.id, self.iteration, k, text, num_tokens)
            batch.append(sample)
            items.append(JudgeItem(sample.id, prompt, text))
        judgments = self.judge.judge(items).judgments  # GRPO stores no judge stats: its rewards are the record
        self.samples += batch
        self.judgments += judgments
        return [j.score for j in judgments]
