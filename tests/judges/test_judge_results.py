"""What a judge call returns, and what it leaves: every judge declares `name` and `relative`, returns a
`JudgeResult`, and is the same object (same `__dict__`) after a call as before it; the ensemble and the
per-task judge pass their members' statistics on under exact prefixed keys."""

from __future__ import annotations

import pytest

from autodidact.judges import Judge, JudgeItem, JudgeResult
from autodidact.judges.consistency import SelfConsistencyJudge
from autodidact.judges.contrastive import ContrastiveJudge
from autodidact.judges.direct import DirectScoreJudge
from autodidact.judges.ensemble import EnsembleJudge, PersonaJudge
from autodidact.judges.pairwise import PairwiseJudge
from autodidact.judges.programmatic import ProgramJudge
from autodidact.judges.routing import TaskRoutedJudge
from autodidact.judges.rubric import RubricJudge
from autodidact.judges.verifier import TaskVerifierJudge
from autodidact.records import Prompt
from autodidact.tasks.arithmetic import ArithmeticTask

SUM = Prompt("p1", "arithmetic", "train", [{"role": "user", "content": "What is 2 + 2?"}], reference=4)
FREE = Prompt("p2", "instructions", "train", [{"role": "user", "content": "Name a colour."}])
ITEMS = [
    JudgeItem("s0", SUM, "4"),
    JudgeItem("s1", SUM, "five"),
    JudgeItem("s2", SUM, "The answer is 4."),
]

# name -> (builder on an engine, relative, what its stats hold beyond what a tiny random model decides)
BUILDERS = {
    "direct": (lambda e: DirectScoreJudge(e), False),
    "direct_generate": (lambda e: DirectScoreJudge(e, mode="generate"), False),
    "rubric": (lambda e: RubricJudge(e, ["correct"], reasoning_tokens=4), False),
    "persona": (lambda e: PersonaJudge(e, "You are terse."), False),
    "verifier": (lambda e: TaskVerifierJudge({"arithmetic": ArithmeticTask()}), False),
    "program": (lambda e: ProgramJudge("number_match"), False),
    "pairwise": (lambda e: PairwiseJudge(e), True),
    "contrastive": (lambda e: ContrastiveJudge(e, reasoning_tokens=4), True),
    "self_consistency": (lambda e: SelfConsistencyJudge("last_number"), True),
    "ensemble": (lambda e: EnsembleJudge([DirectScoreJudge(e), PersonaJudge(e, "You are terse.")]), False),
    "ensemble_relative": (lambda e: EnsembleJudge([DirectScoreJudge(e), PairwiseJudge(e)]), True),
    "routed": (lambda e: TaskRoutedJudge(DirectScoreJudge(e), {"instructions": DirectScoreJudge(e)}), False),
    "routed_relative": (lambda e: TaskRoutedJudge(DirectScoreJudge(e), {"arithmetic": PairwiseJudge(e)}), True),
}


def state(judge: object) -> dict:
    """The judge's attributes; containers copied, so that a list filled in place shows as a change."""
    return {k: (type(v)(v) if isinstance(v, list | dict | set) else v) for k, v in vars(judge).items()}


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_a_call_returns_its_findings_and_leaves_the_judge_as_it_was(kind, tiny_engine):
    build, relative = BUILDERS[kind]
    judge = build(tiny_engine)
    assert isinstance(judge, Judge) and judge.relative is relative
    before = state(judge)
    result = judge.judge(ITEMS)
    assert state(judge) == before  # nothing set on the judge by the call: what it found is in `result`
    assert isinstance(result, JudgeResult)
    assert [j.sample_id for j in result.judgments] == ["s0", "s1", "s2"]
    assert all(j.score is None or 0.0 <= j.score <= 10.0 for j in result.judgments)
    assert judge.judge(ITEMS) == result  # nothing carried over from one call to the next


def test_stats_and_outcomes_of_each_judge_are_exact_where_no_model_decides(tiny_engine):
    verifier = TaskVerifierJudge({"arithmetic": ArithmeticTask()}).judge(ITEMS)
    assert [j.score for j in verifier.judgments] == [10.0, 0.0, 10.0]
    assert (verifier.stats, verifier.outcomes) == ({}, ())
    program = ProgramJudge("number_match").judge(ITEMS)
    assert [j.score for j in program.judgments] == [10.0, 0.0, 10.0]
    assert (program.stats, program.outcomes) == ({"program_timeouts": 0.0}, ())
    votes = SelfConsistencyJudge("last_number").judge(ITEMS)  # answers 4, none, 4: margin 2/3, no tie
    assert votes.stats == pytest.approx({"extraction_rate": 2 / 3, "vote_margin": 2 / 3, "tie_rate": 0.0})
    for judge in (DirectScoreJudge(tiny_engine), RubricJudge(tiny_engine, ["correct"], reasoning_tokens=4)):
        assert (judge.judge(ITEMS).stats, judge.judge(ITEMS).outcomes) == ({}, ())
    pairs = PairwiseJudge(tiny_engine).judge(ITEMS)
    assert pairs.stats["pairs"] == 3.0 and len(pairs.outcomes) == 3  # round robin over 3 samples
    assert [(o.first.sample_id, o.second.sample_id) for o in pairs.outcomes] == [("s0", "s1"), ("s0", "s2"), ("s1", "s2")]


def test_ensemble_stats_carry_each_members_own_stats_under_its_label(tiny_engine):
    members = [DirectScoreJudge(tiny_engine), PairwiseJudge(tiny_engine), SelfConsistencyJudge("last_number")]
    result = EnsembleJudge(members).judge(ITEMS)
    alone = [member.judge(ITEMS).stats for member in members]
    prefixed = {f"{i}:{m.name}/{k}": v for i, (m, stats) in enumerate(zip(members, alone)) for k, v in stats.items()}
    assert {k: v for k, v in result.stats.items() if "/" in k} == prefixed
    assert {"1:pairwise/pairs", "2:self_consistency/vote_margin"} <= set(prefixed)  # not an empty comparison
    assert {k for k in result.stats if "/" not in k} <= {"member_failure_rate", "disagreement"}
    assert "member_failure_rate" in result.stats and result.outcomes == ()


def test_routed_stats_carry_each_tasks_judge_stats_under_its_task_and_pairs_pass_through(tiny_engine):
    items = [*ITEMS, JudgeItem("t0", FREE, "Blue."), JudgeItem("t1", FREE, "Red, or 4.")]
    judge = TaskRoutedJudge(SelfConsistencyJudge("last_number"), {"arithmetic": PairwiseJudge(tiny_engine)})
    result = judge.judge(items)
    pairs = PairwiseJudge(tiny_engine).judge(ITEMS)
    votes = SelfConsistencyJudge("last_number").judge(items[3:])  # the free-text prompt: answers none, 4
    expected = {f"arithmetic/{k}": v for k, v in pairs.stats.items()}
    expected |= {f"default/{k}": v for k, v in votes.stats.items()}
    assert result.stats == expected
    assert expected["default/extraction_rate"] == 0.5 and expected["arithmetic/pairs"] == 3.0
    assert result.outcomes == pairs.outcomes  # critique-and-revise reads the routed pairs
    assert [j.judge for j in result.judgments] == ["self_consistency"] * 5
