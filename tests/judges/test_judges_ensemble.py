"""Ensemble judge: exact mean / min / majority, disagreement, failed members skipped, personas in the prompt."""

from __future__ import annotations

import json
import math
from statistics import pstdev

import pytest

from autodidact.config import judge_config
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem, JudgeResult, build_judge
from autodidact.judges.ensemble import EnsembleJudge, PersonaJudge, combine_scores
from autodidact.records import Judgment, Prompt

PROMPT = Prompt(id="p1", task="arithmetic", split="train", messages=[{"role": "user", "content": "What is 2 + 2?"}])
ITEMS = [JudgeItem(f"s{i}", PROMPT, t) for i, t in enumerate(["4", "five", "banana"])]


class FixedJudge:
    """A member that gives fixed scores (None = failed) in item order."""

    relative = False

    def __init__(self, name, scores, stats=None):
        self.name = name
        self.scores = scores
        self.stats = stats or {}

    def judge(self, items):
        judgments = [
            Judgment(i.sample_id, self.name, s, f"{self.name} says {s}", error=None if s is not None else "broke")
            for i, s in zip(items, self.scores)
        ]
        return JudgeResult(judgments, dict(self.stats))


def members():
    return [
        FixedJudge("direct", [8.0, 2.0, None]),
        FixedJudge("rubric", [6.0, 5.0, None]),
        FixedJudge("pairwise", [10.0, 3.0, 1.0], stats={"position_consistency": 0.75}),
    ]


@pytest.mark.parametrize(
    ("combine", "expected"),
    [
        ("mean", [8.0, 10 / 3, 1.0]),
        ("min", [6.0, 2.0, 1.0]),
        # s0: three votes above 5 -> 10; s1: 2 and 3 below, 5 abstains -> 0; s2: one vote below -> 0.
        ("majority", [10.0, 0.0, 0.0]),
    ],
)
def test_combined_scores_are_exact(combine, expected):
    result = EnsembleJudge(members(), combine=combine).judge(ITEMS)
    judgments = result.judgments
    assert [j.score for j in judgments] == pytest.approx(expected)
    assert [j.judge for j in judgments] == ["ensemble"] * 3
    # Disagreement: population std over the valid members of s0 and s1 (s2 has one valid member).
    assert result.stats["disagreement"] == pytest.approx((pstdev([8, 6, 10]) + pstdev([2, 5, 3])) / 2)
    assert result.stats["disagreement"] == pytest.approx((math.sqrt(8 / 3) + math.sqrt(14 / 9)) / 2)
    assert result.stats["member_failure_rate"] == pytest.approx(2 / 9)
    # Exactly the three keys: the one member with stats of its own appears under its label.
    assert set(result.stats) == {"disagreement", "member_failure_rate", "2:pairwise/position_consistency"}
    assert result.stats["2:pairwise/position_consistency"] == 0.75
    assert json.loads(judgments[2].raw)["members"] == {"0:direct": None, "1:rubric": None, "2:pairwise": 1.0}
    assert "[0:direct] direct says 8.0" in judgments[0].rationale


def test_majority_tie_is_five_and_all_failed_is_none():
    assert combine_scores([7.0, 3.0], "majority") == 5.0
    assert combine_scores([5.0], "majority") == 5.0
    result = EnsembleJudge([FixedJudge("a", [None]), FixedJudge("b", [None])]).judge(ITEMS[:1])
    [judgment] = result.judgments
    assert judgment.score is None and judgment.error == "every member failed: 0:a: broke; 1:b: broke"
    assert result.stats == {"member_failure_rate": 1.0}  # no disagreement with no valid score


class ScoreEngine:
    """Puts all probability on the score "7", and records the prompts."""

    supports_logprobs = True

    def __init__(self):
        self.scored_prompts: list[str] = []

    def render(self, messages):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def continuation_logprobs(self, prompts, continuations, desc=""):
        self.scored_prompts += list(prompts)
        return [[0.0 if c == "7" else math.log(1e-12) for c in continuations] for _ in prompts]

    def generate(self, prompts, params, desc=""):
        raise AssertionError("not used")


def test_personas_are_prefixed_to_the_direct_prompt():
    engine = ScoreEngine()
    [judgment] = PersonaJudge(engine, "You are a meticulous math teacher.").judge(ITEMS[:1]).judgments
    assert judgment.score == pytest.approx(7.0)
    assert engine.scored_prompts[0].startswith("<user>You are a meticulous math teacher.\n\nYou are a strict grader.")
    assert engine.scored_prompts[0].endswith("<assistant>Score: ")


def test_ensemble_built_from_config_with_members_and_personas():
    config = judge_config(
        method="ensemble",
        members=[{"method": "direct"}, {"method": "self_consistency", "extractor": "last_number"}],
        personas=["You are a kind teacher.", "You are a harsh critic."],
        combine="min",
    )
    judge = build_judge(config, ScoreEngine(), {})
    assert judge.labels == ["0:direct", "1:self_consistency", "2:persona", "3:persona"]
    result = judge.judge(ITEMS)
    judgments = result.judgments
    # direct and personas say 7; self-consistency: answers 4 and none and none -> 10, None, None.
    assert [j.score for j in judgments] == pytest.approx([7.0, 7.0, 7.0])
    # s1 and s2: three members, all 7 (std 0).
    assert result.stats["disagreement"] == pytest.approx(pstdev([7, 10, 7, 7]) / 3)
    # The self-consistency member's own figures, under its label: p1's answers "4" and two none.
    assert {k: v for k, v in result.stats.items() if k.startswith("1:")} == pytest.approx(
        {"1:self_consistency/extraction_rate": 1 / 3, "1:self_consistency/vote_margin": 1 / 3,
         "1:self_consistency/tie_rate": 0.0}
    )
    assert judge.relative  # a self-consistency member makes the ensemble relative


def test_ensemble_on_tiny_model(tiny_engine):
    members = [{"method": "direct"}, {"method": "pairwise"}]
    config = judge_config(method="ensemble", members=members, personas=["You are terse."])
    judgments = build_judge(config, tiny_engine, {}).judge(ITEMS).judgments
    assert [j.sample_id for j in judgments] == ["s0", "s1", "s2"]
    assert all(j.score is None or 0 <= j.score <= 10 for j in judgments)


def test_a_member_naming_its_own_model_gets_that_engine_and_is_never_run_on_the_ensembles():
    config = judge_config(
        method="ensemble",
        members=[{"method": "direct"}, {"method": "rubric", "model": "some/judge"}],
    )
    ensemble_engine, member_engine = ScoreEngine(), ScoreEngine()
    asked = []

    def engine_for(member):
        asked.append(member.model)
        return member_engine

    judge = build_judge(config, ensemble_engine, {}, engine_for=engine_for)
    assert asked == ["some/judge"]
    assert judge.members[0].engine is ensemble_engine and judge.members[1].engine is member_engine
    with pytest.raises(AutodidactError, match=r"^judge\.members\[1\]\.model: this caller cannot load"):
        build_judge(config, ensemble_engine, {})  # no way to load it: an error, not the ensemble's engine


def test_a_members_failure_share_is_refused_as_unused():
    with pytest.raises(AutodidactError, match=r"^config: judge\.members\.0\.max_failed_share is not used"):
        judge_config(method="ensemble", members=[{"method": "direct", "max_failed_share": 0.9}])
