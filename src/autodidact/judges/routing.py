"""Per-task judges: each task's samples go to the judge that suits it.

A run mixing tasks rarely has one best judge for all of them: a vote over
extracted answers is the strongest label-free signal where answers can be
extracted (arithmetic) and meaningless where they cannot (free text).
`judge.tasks` names a judge per task; the rest use the run's own judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from autodidact.judges.base import Judge, JudgeItem, JudgeResult
from autodidact.records import Judgment


class TaskRoutedJudge:
    """Sends each item to its task's judge (`routes`), or to `default`; one judgment per item, in order.

    Judgments carry this judge's name, so the store and selection see one judge.
    A call's `stats` are each judge's own statistics of that call, prefixed with its task
    ("arithmetic/vote_margin"; the default's under "default/"). Judges that compare
    (`outcomes`) keep their pairs, in the order of the tasks' first items.
    """

    name: str
    relative: bool

    def __init__(self, default: Judge, routes: Mapping[str, Judge]):
        self.default = default
        self.routes = dict(routes)
        self.name = default.name  # the run's judge: what the held-out metrics and reports call it
        # A relative judge (votes, comparisons) cannot score one held-out answer alone: the loop then
        # scores held-out answers with the direct judge, as for any relative judge.
        self.relative = any(j.relative for j in (default, *self.routes.values()))

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """Each item judged by its task's judge, under this judge's name; the judges' stats by task."""
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.prompt.task if item.prompt.task in self.routes else "", []).append(index)
        out: list[Judgment | None] = [None] * len(items)
        stats: dict[str, float] = {}
        outcomes: tuple = ()
        for task, indices in groups.items():
            judge = self.routes[task] if task else self.default
            result = judge.judge([items[i] for i in indices])
            for i, judgment in zip(indices, result.judgments, strict=True):
                out[i] = replace(judgment, judge=self.name)
            prefix = task or "default"
            stats |= {f"{prefix}/{k}": v for k, v in result.stats.items()}
            outcomes += tuple(result.outcomes)
        return JudgeResult([j for j in out if j is not None], stats, outcomes)


__all__ = ["TaskRoutedJudge"]
