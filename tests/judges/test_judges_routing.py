"""Per-task judges (`judge.tasks`): each task's items reach its own judge, in order, under one name."""

from __future__ import annotations

import pytest

from autodidact.config import load_config
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem, JudgeResult, build_judge
from autodidact.judges.consistency import SelfConsistencyJudge
from autodidact.judges.direct import DirectScoreJudge
from autodidact.judges.routing import TaskRoutedJudge
from autodidact.records import Judgment, Prompt


class ScriptedJudge:
    """Scores every item `score`, counts the items in its stats, and remembers which sample ids it saw."""

    def __init__(self, name: str, score: float, relative: bool = False):
        self.name, self.score, self.relative = name, score, relative
        self.seen: list[str] = []

    def judge(self, items):
        self.seen += [i.sample_id for i in items]
        judgments = [Judgment(i.sample_id, self.name, self.score) for i in items]
        outcomes = tuple(f"{self.name}:{i.sample_id}" for i in items)  # stand-ins for compared pairs
        return JudgeResult(judgments, {"items": float(len(items))}, outcomes)


def item(sample_id: str, task: str) -> JudgeItem:
    prompt = Prompt(id=f"p-{sample_id}", task=task, split="train", messages=[{"role": "user", "content": "q"}])
    return JudgeItem(sample_id, prompt, "response")


def test_items_reach_their_tasks_judge_and_come_back_in_order_under_one_name():
    default, votes = ScriptedJudge("direct", 6.0), ScriptedJudge("self_consistency", 10.0, relative=True)
    judge = TaskRoutedJudge(default, {"arithmetic": votes})
    items = [item("a", "instructions"), item("b", "arithmetic"), item("c", "other"), item("d", "arithmetic")]
    result = judge.judge(items)
    judgments = result.judgments
    assert [j.sample_id for j in judgments] == ["a", "b", "c", "d"]
    assert [j.score for j in judgments] == [6.0, 10.0, 6.0, 10.0]
    assert {j.judge for j in judgments} == {"direct"}  # the store and selection read one judge's judgments
    assert votes.seen == ["b", "d"] and default.seen == ["a", "c"]
    assert judge.relative  # held-out answers then go to the direct judge
    assert result.stats == {"default/items": 2.0, "arithmetic/items": 2.0}  # exact keys: each judge's, by task
    # Compared pairs (a contrastive route's) come through for critique-and-revise, task by task.
    assert result.outcomes == ("direct:a", "direct:c", "self_consistency:b", "self_consistency:d")
    assert not TaskRoutedJudge(default, {"instructions": ScriptedJudge("direct", 1.0)}).relative


class NoEngine:
    supports_logprobs = True


def test_config_builds_a_routed_judge():
    config = load_config(
        None,
        ["judge.tasks={arithmetic: {method: self_consistency, consistency_score: share}}"],
    )
    judge = build_judge(config.judge, NoEngine(), {"arithmetic": object(), "instructions": object()})
    assert isinstance(judge, TaskRoutedJudge) and isinstance(judge.default, DirectScoreJudge)
    assert isinstance(judge.routes["arithmetic"], SelfConsistencyJudge) and judge.routes["arithmetic"].score == "share"


def test_unknown_task_and_nested_sections_are_refused():
    config = load_config(None, ["judge.tasks={arithmetc: {method: self_consistency}}"])
    with pytest.raises(AutodidactError, match=r"judge\.tasks: 'arithmetc' is not a task of this run"):
        build_judge(config.judge, NoEngine(), {"arithmetic": object()})
    with pytest.raises(AutodidactError, match=r"judge\.tasks\.arithmetic has tasks of its own"):
        load_config(None, ["judge.tasks={arithmetic: {tasks: {instructions: {method: direct}}}}"])


def test_a_saved_routed_config_loads_back_and_a_nested_failure_share_is_refused(tmp_path):
    # config.yaml of a run writes every field of every judge section; resuming it must not be refused.
    from autodidact.config import to_yaml

    config = load_config(None, ["judge.tasks={arithmetic: {method: self_consistency}}"])
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(config), encoding="utf-8")
    assert load_config(saved).judge.tasks["arithmetic"].method == "self_consistency"
    with pytest.raises(AutodidactError, match=r"judge\.tasks\.arithmetic\.max_failed_share is not used"):
        load_config(None, ["judge.tasks={arithmetic: {method: direct, max_failed_share: 0.9}}"])
