"""The records that flow between the stages of the loop.

Each stage takes records and returns records; the loop persists them in the
store. Keeping them plain dataclasses (no behaviour, no model references) is
what lets a stage be rerun alone from the store and lets tests build them by
hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["train", "heldout", "heldout_paraphrase"]
PARAPHRASE_SPLIT: Split = "heldout_paraphrase"  # held-out prompts reworded away from the training phrasings
# Where a sample came from: the policy's sampling (generate), a reply logged in deployment, a critique-and-revise
# rewrite (judge stage), GRPO's own completions (train stage), or a greedy answer to a held-out prompt (evaluate).
Origin = Literal["generated", "deployed", "revision", "online", "heldout"]
Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}


@dataclass(frozen=True)
class Prompt:
    """One unit of work: a user message, with what is needed to check an answer.

    `reference` and `verifier` are used only by held-out evaluation (and by the
    verifier judge when the user picks it); they never reach the self-judge.
    """

    id: str
    task: str
    split: Split
    messages: list[Message]
    reference: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The last user message: what the model is asked."""
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class Sample:
    """One response to a prompt; `origin` says which stage wrote it (the store keeps it in a column)."""

    id: str
    prompt_id: str
    iteration: int
    index: int  # 0..n-1 among the samples of this prompt in this iteration
    text: str
    num_tokens: int
    origin: Origin = "generated"


@dataclass(frozen=True)
class Judgment:
    """A judge's verdict on one sample.

    `score` is None when the judge failed (unparseable output, error); a failed
    judgment is counted and excluded from selection, never treated as 0.
    """

    sample_id: str
    judge: str
    score: float | None
    rationale: str = ""
    raw: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.score is not None


@dataclass(frozen=True)
class SFTExample:
    """A selected sample turned into a supervised training example."""

    sample_id: str
    prompt_id: str
    messages: list[Message]  # the prompt's messages
    completion: str  # the assistant response to learn
    score: float | None  # the judge's score; None for a critique-and-revise rewrite, which is not judged
    # (start, end) character spans of `completion` kept out of the loss: text the model did not write, such as
    # search results inside a transcript. Set at training time by a task (tasks.base.ShapesTraining), never stored.
    untrained: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class PreferencePair:
    """Two responses to one prompt, the better-judged one `chosen`: a DPO training example."""

    prompt_id: str
    messages: list[Message]  # the prompt's messages
    chosen: str  # the assistant response to prefer
    rejected: str  # the assistant response to move away from
    chosen_sample_id: str
    rejected_sample_id: str
    chosen_score: float
    rejected_score: float

    @property
    def margin(self) -> float:
        """How much better the chosen response was judged (> 0)."""
        return self.chosen_score - self.rejected_score


@dataclass(frozen=True)
class Alert:
    """A monitor's warning about one iteration: a known failure mode was detected.

    `stop` is True when the config asked this monitor to stop the run.
    """

    iteration: int
    monitor: str  # reward_hacking | bias | mode_collapse | diminishing_returns | reliability
    message: str
    stop: bool = False


@dataclass(frozen=True)
class ReviewItem:
    """A judged item queued for a person at a human validation checkpoint.

    kind 'score': the person scores `sample_id` 0-10 (the judge gave `judge_score`).
    kind 'pair': the person picks the better of `sample_id` (shown first) and
    `other_sample_id`; the judge preferred the one with the higher score.
    """

    id: str
    iteration: int
    kind: Literal["score", "pair"]
    prompt_id: str
    sample_id: str
    judge_score: float
    other_sample_id: str | None = None
    other_judge_score: float | None = None

    @property
    def judge_preference(self) -> float | None:
        """For a pair: 1.0 if the judge preferred the first response, 0.0 the second, 0.5 a tie."""
        if self.kind != "pair" or self.other_judge_score is None:
            return None
        if self.judge_score == self.other_judge_score:
            return 0.5
        return 1.0 if self.judge_score > self.other_judge_score else 0.0


@dataclass(frozen=True)
class Rating:
    """A person's rating of a review item: a 0-10 score, or for a pair 1.0 (first better), 0.0 (second), 0.5 (tie)."""

    item_id: str
    value: float
    rater: str = ""
    source: str = "web"  # web | terminal | import
