"""Semantic agreement and the judge with self-written examples, on a fake embedder with fixed vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autodidact.config import judge_config
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem, build_judge
from autodidact.judges.agreement import ALONE, SemanticAgreementJudge, agreement_scores
from autodidact.judges.self_examples import SelfExamplesJudge
from autodidact.records import Prompt

# Unit vectors: three close answers and one pointing away from them (its cosines are negative).
VECTORS = {
    "A": [1.0, 0.0, 0.0],
    "A'": [0.96, 0.28, 0.0],
    "A''": [0.96, -0.28, 0.0],
    "odd": [-0.6, 0.0, 0.8],
}


class FakeEmbedder:
    """Looks each text up by its last word (so responses can carry a distinctive text before it)."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.array([VECTORS[t.split()[-1]] for t in texts], dtype=np.float32)  # (n, 3)


def _prompt(pid: str) -> Prompt:
    return Prompt(id=pid, task="instructions", split="train", messages=[{"role": "user", "content": f"question {pid}"}])


def _items(pid: str, words: list[str]) -> list[JudgeItem]:
    return [JudgeItem(f"{pid}-{k}", _prompt(pid), f"{pid} answer {k} {w}") for k, w in enumerate(words)]


def test_the_odd_one_out_scores_lowest_with_exact_values():
    items = _items("p1", ["A", "A'", "odd", "A''"])
    result = SemanticAgreementJudge(FakeEmbedder()).judge(items)
    scores = [j.score for j in result.judgments]
    # Mean cosine with the other three: A (0.96 + 0.96 - 0.6) / 3; A' and A'' (0.96 + 0.8432 - 0.576) / 3;
    # odd (-0.6 - 0.576 - 0.576) / 3 < 0, clipped to 0.
    expected = [10 * 1.32 / 3, 10 * 1.2272 / 3, 0.0, 10 * 1.2272 / 3]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert min(range(4), key=lambda i: scores[i]) == 2
    assert result.stats["mean_agreement"] == pytest.approx(sum(expected) / 40, abs=1e-6)


def test_agreement_is_within_a_prompt_and_a_lone_sample_fails_with_the_reason():
    embedder = FakeEmbedder()
    items = _items("p1", ["A", "A'"]) + _items("p2", ["odd"]) + _items("p3", ["A", "odd"])
    result = SemanticAgreementJudge(embedder).judge(items)
    assert embedder.calls == 1  # one encode for the whole call
    assert [j.score for j in result.judgments] == pytest.approx([9.6, 9.6, None, 0.0, 0.0])
    assert result.judgments[2].error == ALONE and result.judgments[2].score is None


def test_embedder_none_or_missing_is_one_line():
    with pytest.raises(AutodidactError, match=r"^config: judge\.embedder: .*not 'none'"):
        judge_config(method="semantic_agreement", embedder="none")
    with pytest.raises(AutodidactError) as err:
        build_judge(judge_config(method="semantic_agreement", embedder="/no/such/dir"), None, {})
    assert str(err.value).startswith("judge.embedder: embedder model directory '/no/such/dir' does not exist")
    assert "\n" not in str(err.value)


class RecordingEngine:
    """Records the judge prompts; every prompt gets all probability on the score "7"."""

    supports_logprobs = True

    def __init__(self):
        self.prompts = []

    def render(self, messages):
        return "\n".join(m["content"] for m in messages) + "\n<assistant>"

    def continuation_logprobs(self, prompts, continuations, desc="scoring"):
        self.prompts += list(prompts)
        return [[0.0 if c == "7" else -math.inf for c in continuations] for _ in prompts]

    def generate(self, prompts, params, desc="generating"):
        raise AssertionError("mode logprobs only")


def test_self_examples_show_other_prompts_best_and_worst_samples_only():
    # p1 and p2 have a spread of answers; p3 has one sample (no pair); p2's gap is the wider.
    items = _items("p1", ["A", "A'", "A''"]) + _items("p2", ["A", "A'", "odd"]) + _items("p3", ["A"])
    engine = RecordingEngine()
    result = SelfExamplesJudge(engine, FakeEmbedder(), shots=2).judge(items)
    assert [j.score for j in result.judgments] == pytest.approx([7.0] * 7)
    agreement = agreement_scores(items, FakeEmbedder())
    # p1: A 0.96, A' and A'' 0.9016 (gap 0.058); p2: A 0.18, A' 0.192, odd 0 (clipped; gap 0.192).
    assert agreement == pytest.approx([0.96, 0.9016, 0.9016, 0.18, 0.192, 0.0, None], abs=1e-5)
    for item, prompt, judgment in zip(items, engine.prompts, result.judgments):
        own = item.prompt.id
        shown = {i.response for i in items if i.response in prompt and i is not item}
        assert not any(r.startswith(own) for r in shown), (own, shown)  # never an example of its own prompt
        expected_pairs = {"p1": ["p2"], "p2": ["p1"], "p3": ["p2", "p1"]}[own]  # widest gap first
        assert judgment.rationale == f"examples from prompts: {', '.join(expected_pairs)}"
        # p1's best is A, its worst A' (the first of two equals); p2's best is A', its worst odd.
        best_and_worst = {"p1": {"p1 answer 0 A", "p1 answer 1 A'"}, "p2": {"p2 answer 1 A'", "p2 answer 2 odd"}}
        assert shown == set().union(*(best_and_worst[p] for p in expected_pairs))
        assert prompt.index("Score: 9") < prompt.index("Score: 2") < prompt.index(f"question {own}")
    assert result.stats["examples_per_item"] == pytest.approx((3 + 3 + 2) / 7)


def test_self_examples_without_other_prompts_is_the_direct_prompt():
    from autodidact.judges.prompts import direct_prompt

    engine = RecordingEngine()
    items = _items("p1", ["A", "odd"])
    SelfExamplesJudge(engine, FakeEmbedder()).judge(items)
    assert engine.prompts == [f"{direct_prompt(i.prompt.text, i.response)}\n<assistant>Score: " for i in items]
