"""The task's own verifier as the judge: the supervised upper bound.

Using it means training on ground truth, so a run with this judge is not
self-improvement; it is the reference the self-judges are compared against.
One exception: a task whose references the model wrote itself (documents)
stays label-free with this judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment
from autodidact.tasks import Task
from autodidact.tasks.answering import verify_all  # batched per task where a task can (model-graded references)


class TaskVerifierJudge:
    """Scores 10 x the task verifier's verdict (0..1); a response it cannot grade fails (None)."""

    name = "verifier"
    relative = False

    def __init__(self, tasks: Mapping[str, Task]):
        self.tasks = tasks

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One judgment per item; no statistics."""

        verdicts = verify_all(
            self.tasks, {i.prompt.id: i.prompt for i in items}, {i.sample_id: (i.prompt.id, i.response) for i in items}
        )
        judgments = []
        for item in items:
            verdict = verdicts[item.sample_id]
            score = None if verdict is None else 10.0 * verdict
            error = None if verdict is not None else "the verifier could not grade this response"
            judgments.append(Judgment(item.sample_id, self.name, score, raw=str(verdict), error=error))
        return JudgeResult(judgments)
