"""The model-probability signals of issue 20: self-certainty, reverse likelihood, and the product ensemble."""

from __future__ import annotations

import json
import math

import pytest
import torch

from autodidact.config import judge_config
from autodidact.engines import FailedRow
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem, JudgeResult, build_judge
from autodidact.judges.certainty import SelfCertaintyJudge
from autodidact.judges.consistency import SelfConsistencyJudge
from autodidact.judges.ensemble import EnsembleJudge, combine_scores
from autodidact.judges.prompts import backtranslation_prompt
from autodidact.judges.reverse_likelihood import ReverseLikelihoodJudge, sigmoid
from autodidact.records import Judgment, Prompt


def _prompt(pid: str, question: str) -> Prompt:
    return Prompt(id=pid, task="arithmetic", split="train", messages=[{"role": "user", "content": question}])


P1, P2 = _prompt("p1", "What is 2 + 3?"), _prompt("p2", "What is the answer score of the final number?")
ITEMS = [
    JudgeItem("s0", P1, "5"),
    JudgeItem("s1", P1, "The answer is 5."),
    JudgeItem("s2", P2, "score rate response 42"),
    JudgeItem("s3", P1, "plus minus times number 12"),
    JudgeItem("s4", P2, "42"),
]


class ServerLikeEngine:
    """An engine with only the `Engine` protocol: no full distributions, no tokenizer (as a server)."""

    supports_logprobs = True

    def __init__(self, rows=None):
        self.rows = rows or {}
        self.calls = []

    def render(self, messages):
        return "\n".join(m["content"] for m in messages) + "\n<assistant>"

    def generate(self, prompts, params, desc="generating"):
        raise AssertionError("not used")

    def continuation_logprobs(self, prompts, continuations, desc="scoring"):
        self.calls.append((list(prompts), list(continuations)))
        return [self.rows.get(p, [-1.0] * len(continuations)) for p in prompts]


class TokenCountingEngine(ServerLikeEngine):
    def count_tokens(self, text):
        return len(text.split())


# --- self_certainty ---------------------------------------------------------------------------------


@pytest.mark.parametrize("certainty", ["kl_uniform", "mean_logprob"])
def test_self_certainty_scores_are_the_measured_certainty_mapped_to_0_10(tiny_engine, certainty):
    result = build_judge(judge_config(method="self_certainty", certainty=certainty), tiny_engine, {}).judge(ITEMS)
    prompts = [tiny_engine.render(i.prompt.messages) for i in ITEMS]
    measured = tiny_engine.response_certainty(prompts, [i.response for i in ITEMS])
    for judgment, item, m in zip(result.judgments, ITEMS, measured):
        log_vocab = math.log(tiny_engine.model.config.vocab_size)
        kl_score = 10 * m.kl_uniform / (m.kl_uniform + log_vocab)
        expected = kl_score if certainty == "kl_uniform" else 10 * math.exp(m.mean_logprob)
        assert judgment.sample_id == item.sample_id and judgment.judge == "self_certainty"
        assert judgment.score == pytest.approx(expected, abs=1e-9) and 0 < judgment.score < 10
        assert json.loads(judgment.raw)["tokens"] == m.tokens
    assert result.stats["mean_logprob"] == pytest.approx(sum(m.mean_logprob for m in measured) / 5)


def test_a_peaked_distribution_scores_above_a_flat_one(tiny_llama):
    from autodidact.engines import TransformersEngine
    from autodidact.models import load_model

    scores = {}
    for name, scale in [("flat", 0.0), ("as built", 1.0), ("peaked", 50.0)]:
        model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(scale)  # logits x scale: 0 gives the uniform distribution
        judge = SelfCertaintyJudge(TransformersEngine(model, tokenizer, score_batch_size=4))
        scores[name] = [j.score for j in judge.judge(ITEMS).judgments]
    assert all(s == pytest.approx(0.0, abs=1e-5) for s in scores["flat"])  # KL from uniform of uniform
    assert all(f < b < p for f, b, p in zip(scores["flat"], scores["as built"], scores["peaked"]))
    assert min(scores["peaked"]) > 1.0


def test_kl_beyond_log_v_keeps_its_rank_below_10():
    from autodidact.engines import ResponseCertainty
    from autodidact.judges.certainty import certainty_score

    log_v = math.log(151_936)
    kls = (0.0, log_v, 2 * log_v, 30.0)
    scores = [certainty_score(ResponseCertainty(kl, -1.0, 3, log_v), "kl_uniform") for kl in kls]
    assert scores == pytest.approx([0.0, 5.0, 20 / 3, 300 / (30 + log_v)]) and scores[-1] < 10


def test_self_certainty_fails_an_empty_response_only(tiny_engine):
    judgments = SelfCertaintyJudge(tiny_engine).judge([JudgeItem("e", P1, ""), ITEMS[0]]).judgments
    assert judgments[0].score is None and judgments[0].error == "empty response: no tokens to measure certainty on"
    assert judgments[1].score is not None


# --- reverse_likelihood -----------------------------------------------------------------------------


def _turn(engine, response: str | None) -> str:
    return engine.render([{"role": "user", "content": backtranslation_prompt(response)}])


def test_reverse_likelihood_pmi_equals_two_continuation_logprobs_calls(tiny_engine):
    result = build_judge(judge_config(method="reverse_likelihood"), tiny_engine, {}).judge(ITEMS)
    pmis = []
    for judgment, item in zip(result.judgments, ITEMS):
        instruction = item.prompt.text
        turns = [_turn(tiny_engine, r) for r in (item.response, None)]
        given, prior = (tiny_engine.continuation_logprobs([t], [instruction])[0][0] for t in turns)
        pmi = (given - prior) / tiny_engine.count_tokens(instruction)
        pmis.append(pmi)
        assert json.loads(judgment.raw)["pmi"] == pytest.approx(pmi, abs=1e-5)
        assert judgment.score == pytest.approx(10 * sigmoid(pmi), abs=1e-4)
    assert len(set(j.score for j in result.judgments)) == 5  # the response changes the score
    assert result.stats["mean_pmi"] == pytest.approx(sum(pmis) / 5, abs=1e-5)


def test_reverse_likelihood_scores_each_question_against_its_own_instruction_only():
    conditional = "Here is a response:"  # the turn with a response; the prior's turn has none
    engine = TokenCountingEngine()
    judge = ReverseLikelihoodJudge(engine)
    bad = JudgeItem("bad", P2, "unreachable")
    # The row of one sample fails, as a dropped server request would.
    engine.rows = {_turn(engine, "unreachable"): FailedRow(1, "timeout")}
    result = judge.judge([*ITEMS, bad])
    assert [len(prompts) for prompts, _ in engine.calls] == [3 + 1, 3 + 1]  # a question's samples, then the prior
    assert [conts for _, conts in engine.calls] == [[P1.text], [P2.text]]
    assert all(conditional in p for prompts, _ in engine.calls for p in prompts[:-1])
    assert all(conditional not in prompts[-1] for prompts, _ in engine.calls)
    scores = [j.score for j in result.judgments]
    assert scores[:5] == [5.0] * 5  # every row -1 here: PMI 0, sigmoid 1/2
    assert scores[5] is None and result.judgments[5].error == "judge engine: timeout"


def test_reverse_likelihood_fails_a_row_without_probability():
    engine = TokenCountingEngine()
    engine.rows = {_turn(engine, "5"): [-math.inf]}
    [judgment] = ReverseLikelihoodJudge(engine).judge([ITEMS[0]]).judgments
    assert judgment.score is None and judgment.error == "the engine gave the instruction no probability (-inf)"


def test_sigmoid_is_stable_at_the_extremes():
    assert sigmoid(0.0) == 0.5 and sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0
    assert sigmoid(2.0) == pytest.approx(1 / (1 + math.exp(-2.0)))


# --- build errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["self_certainty", "reverse_likelihood"])
def test_a_signal_that_needs_the_in_process_engine_is_refused_in_one_line(method):
    with pytest.raises(AutodidactError) as err:
        build_judge(judge_config(method=method), ServerLikeEngine(), {})
    message = str(err.value)
    assert message.startswith(f"judge.method {method} needs an in-process (transformers) engine")
    assert "\n" not in message


# --- product ensemble -------------------------------------------------------------------------------


class FixedJudge:
    relative = False

    def __init__(self, name, scores):
        self.name, self.scores = name, scores

    def judge(self, items):
        return JudgeResult([Judgment(i.sample_id, self.name, s, error=None if s is not None else "broke")
                            for i, s in zip(items, self.scores)])


def test_product_is_the_geometric_mean_on_the_0_10_scale():
    assert combine_scores([4.0, 9.0], "product") == pytest.approx(6.0)
    assert combine_scores([10.0, 10.0, 0.0], "product") == 0.0
    assert combine_scores([2.5], "product") == pytest.approx(2.5)
    members = [FixedJudge("a", [8.0, None, None, 1.0]), FixedJudge("b", [2.0, 5.0, None, 10.0])]
    judgments = EnsembleJudge(members, combine="product").judge(ITEMS[:4]).judgments
    assert [j.score for j in judgments] == pytest.approx([4.0, 5.0, None, math.sqrt(10.0)])  # failed skipped


def test_consistency_times_certainty_builds_from_its_config(tiny_engine):
    section = judge_config(method="ensemble", combine="product", members=[
        {"method": "self_consistency", "consistency_score": "share"}, {"method": "self_certainty"},
    ])
    judge = build_judge(section, tiny_engine, {})
    assert [m.name for m in judge.members] == ["self_consistency", "self_certainty"] and judge.relative
    items = ITEMS[:2] + [JudgeItem("s5", P1, "It is 6.")]  # answers 5, 5, 6: shares 2/3, 2/3, 1/3
    combined = [j.score for j in judge.judge(items).judgments]
    consistency = [j.score for j in SelfConsistencyJudge(score="share").judge(items).judgments]
    certainty = [j.score for j in SelfCertaintyJudge(tiny_engine).judge(items).judgments]
    assert consistency == pytest.approx([20 / 3, 20 / 3, 10 / 3])
    assert combined == pytest.approx([10 * math.sqrt(a / 10 * b / 10) for a, b in zip(consistency, certainty)])
