"""Self-consistency judge: extractors, exact majority scores and vote margins, the tie rule, None on no answer."""

from __future__ import annotations

import json

import pytest

from autodidact.engines import SamplingParams
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem
from autodidact.judges.consistency import EXTRACTORS, SelfConsistencyJudge, load_extractor, normalise_answer
from autodidact.records import Prompt


def make_prompt(pid: str) -> Prompt:
    return Prompt(id=pid, task="arithmetic", split="train", messages=[{"role": "user", "content": "Compute it."}])


P1, P2 = make_prompt("p1"), make_prompt("p2")


@pytest.mark.parametrize(
    ("extractor", "text", "answer"),
    [
        ("last_number", "2 + 2 = 4", "4"),
        ("last_number", "It costs 1,000 or -2.5 dollars", "-2.5"),
        ("last_number", "no digits", None),
        ("boxed", "so \\boxed{\\frac{1}{2}} and \\boxed{7}", "7"),
        ("boxed", "\\boxed{x^{2}}", "x^{2}"),
        ("boxed", "\\boxed{unclosed", None),
        ("final_line", "work\n\n  42  \n", "42"),
        ("final_line", "   ", None),
        ("answer_tag", "Reasoning. Answer: Paris\nThanks", "Paris"),
        ("answer_tag", "answer: 3\nANSWER: 5", "5"),
        ("answer_tag", "Answer:", None),
    ],
)
def test_builtin_extractors(extractor, text, answer):
    assert EXTRACTORS[extractor](text) == answer


def test_answers_are_compared_in_normal_form():
    assert normalise_answer("4.0") == normalise_answer("4") == normalise_answer(" 4. ") == "4"
    assert normalise_answer("1,000") == "1000" and normalise_answer("-0") == "0"
    assert normalise_answer("Paris ") == normalise_answer("paris") and normalise_answer("1,2") == "1,2"


def test_majority_scores_and_vote_margin_are_exact():
    items = [
        JudgeItem("a0", P1, "The answer is 4"),
        JudgeItem("b0", P2, "7"),
        JudgeItem("a1", P1, "4.0"),
        JudgeItem("a2", P1, "5"),
        JudgeItem("a3", P1, "no idea"),
        JudgeItem("b1", P2, "8"),
    ]
    result = SelfConsistencyJudge("last_number").judge(items)
    judgments = result.judgments
    assert [j.sample_id for j in judgments] == ["a0", "b0", "a1", "a2", "a3", "b1"]
    # p1: answers 4, 4, 5, none -> majority 4, margin (2 - 1) / 4. p2: 7 vs 8 tie -> the first seen (7) wins, margin 0.
    assert [j.score for j in judgments] == [10.0, 10.0, 10.0, 0.0, None, 0.0]
    assert "found no answer" in judgments[4].error
    assert json.loads(judgments[0].raw)["margin"] == 0.25 and json.loads(judgments[1].raw)["margin"] == 0.0
    assert json.loads(judgments[0].raw)["votes"] == {"4": 2, "5": 1}
    assert result.stats == pytest.approx({"vote_margin": 0.125, "tie_rate": 0.5, "extraction_rate": 5 / 6})
    assert result.outcomes == ()


def test_share_scores_are_the_exact_agreement_shares():
    items = [
        JudgeItem("a0", P1, "The answer is 4"),
        JudgeItem("a1", P1, "4.0"),
        JudgeItem("a2", P1, "5"),
        JudgeItem("a3", P1, "no idea"),
        JudgeItem("b0", P2, "7"),
    ]
    judgments = SelfConsistencyJudge("last_number", score="share").judge(items).judgments
    # p1: of 3 extracted answers two say 4 and one says 5; the unanswered sample stays None.
    assert [j.score for j in judgments] == [pytest.approx(20 / 3), pytest.approx(20 / 3), pytest.approx(10 / 3), None, 10.0]
    with pytest.raises(AutodidactError, match="consistency_score"):
        SelfConsistencyJudge("last_number", score="mean")


def test_prompt_without_any_answer_is_all_none_and_left_out_of_the_margin():
    items = [JudgeItem("a0", P1, "4"), JudgeItem("b0", P2, "\\boxed{3}"), JudgeItem("b1", P2, "\\boxed{3}")]
    result = SelfConsistencyJudge("boxed").judge(items)
    assert [j.score for j in result.judgments] == [None, 10.0, 10.0]
    assert result.stats["vote_margin"] == 1.0


def test_dotted_path_extractor_and_a_raising_one():
    judge = SelfConsistencyJudge("os.path:basename")
    result = judge.judge([JudgeItem("a", P1, "x/y/4"), JudgeItem("b", P1, "z/4")])
    assert [j.score for j in result.judgments] == [10.0, 10.0]

    def explode(text):
        raise KeyError("boom")

    [failed] = SelfConsistencyJudge(explode).judge([JudgeItem("a", P1, "4")]).judgments
    assert failed.score is None and "raised KeyError" in failed.error


@pytest.mark.parametrize("spec", ["os.path:no_such_function", "no_such_module_xyz:fn", "lastnumber", "os.path:sep"])
def test_bad_extractor_gives_a_clear_error(spec):
    with pytest.raises(AutodidactError, match="judge.extractor"):
        load_extractor(spec)


def test_self_consistency_on_tiny_model_samples(tiny_engine):
    rendered = tiny_engine.render(P1.messages)
    samples = tiny_engine.generate([rendered], SamplingParams(n=4, temperature=1.0, max_new_tokens=8))[0]
    items = [JudgeItem(f"s{i}", P1, c.text) for i, c in enumerate(samples)]
    judgments = SelfConsistencyJudge("last_number").judge(items).judgments
    assert [j.sample_id for j in judgments] == ["s0", "s1", "s2", "s3"]
    assert all(j.score in (0.0, 10.0) or (j.score is None and j.error) for j in judgments)
