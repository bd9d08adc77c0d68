"""A stage's world built by hand: scripted engine and judge, prompts (the `stage_ctx` fixture puts them in a context)."""

from __future__ import annotations

from dataclasses import dataclass

from autodidact.engines import Completion, SamplingParams
from autodidact.judges import JudgeItem, JudgeResult
from autodidact.records import Judgment, Prompt


class ScriptedEngine:
    """Answers "answer k" (k tokens + 1) for the k-th of n completions; renders a prompt as its last message."""

    supports_logprobs = False

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], SamplingParams]] = []

    def render(self, messages) -> str:
        return messages[-1]["content"]

    def generate(self, prompts, params, desc=""):
        self.calls.append((list(prompts), params))
        return [[Completion(f"answer {k}", k + 1) for k in range(params.n)] for _ in prompts]


@dataclass
class LengthJudge:
    """Scores a response by its length; every `fail_every`-th item fails. Its stats: the items judged."""

    name: str = "length"
    relative: bool = False
    fail_every: int = 0

    def judge(self, items: list[JudgeItem]) -> JudgeResult:
        judgments = [
            Judgment(it.sample_id, self.name, None if self.fail_every and (i + 1) % self.fail_every == 0 else float(len(it.response)),
                     error="scripted failure" if self.fail_every and (i + 1) % self.fail_every == 0 else None)
            for i, it in enumerate(items)
        ]
        return JudgeResult(judgments, stats={"judged": float(len(items))})


def prompt(id: str, task: str = "qa", split: str = "train") -> Prompt:
    return Prompt(id, task, split, [{"role": "user", "content": f"question {id}"}])
