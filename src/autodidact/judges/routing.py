"""Per-task judges: each task's samples go to the judge that suits it.

A run mixing tasks rarely has one best judge for all of them: a vote over
extracted answers is the strongest label-free signal where answers can be
extracted (arithmetic) and meaningless where they cannot (free text).
`judge.tasks` names a judge per task; the rest use the run's own judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from autodidact.judges import Judge, JudgeItem
from autodidact.records import Judgment


class TaskRoutedJudge:
    """Sends each item to its task's judge (`routes`), or to `default`; one judgment per item, in order.

    Judgments carry this judge's name, so the store and selection see one judge.
    `last_stats` holds each judge's own statistics, prefixed with its task
    ("arithmetic/vote_margin"; the default's under "default/").
    """

    def __init__(self, default: Judge, routes: Mapping[str, Judge]):
        self.default = default
        self.routes = dict(routes)
        self.name = default.name  # the run's judge: what the held-out metrics and reports call it
        # A relative judge (votes, comparisons) cannot score one held-out answer alone: the loop then
        # scores held-out answers with the direct judge, as for any relative judge.
        self.relative = any(getattr(j, "relative", False) for j in (default, *self.routes.values()))
        self.last_stats: dict[str, float] = {}

    def judge(self, items: Sequence[JudgeItem]) -> list[Judgment]:
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.prompt.task if item.prompt.task in self.routes else "", []).append(index)
        out: list[Judgment | None] = [None] * len(items)
        self.last_stats = {}
        for task, indices in groups.items():
            judge = self.routes[task] if task else self.default
            judgments = judge.judge([items[i] for i in indices])
            for i, judgment in zip(indices, judgments, strict=True):
                out[i] = replace(judgment, judge=self.name)
            prefix = task or "default"
            self.last_stats |= {f"{prefix}/{k}": v for k, v in (getattr(judge, "last_stats", None) or {}).items()}
        return [j for j in out if j is not None]


__all__ = ["TaskRoutedJudge"]
