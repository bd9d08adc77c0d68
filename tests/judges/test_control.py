"""The random judge: the control arm keeps a uniformly random valid sample per prompt."""

from __future__ import annotations

from collections import Counter

from autodidact.config import judge_config
from autodidact.judges import JudgeItem, build_judge
from autodidact.judges.control import RandomJudge, uniform_score
from autodidact.records import Prompt, Sample
from autodidact.selection import select


def _prompt(i: int) -> Prompt:
    return Prompt(id=f"p{i}", task="t", messages=[{"role": "user", "content": f"q{i}"}], split="train")


def test_scores_are_fixed_per_sample_and_in_range():
    items = [JudgeItem(f"s{i}", _prompt(0), "x") for i in range(200)]
    first = RandomJudge().judge(items).judgments
    again = RandomJudge().judge(list(reversed(items))).judgments
    assert {j.sample_id: j.score for j in first} == {j.sample_id: j.score for j in again}
    scores = [j.score for j in first]
    assert all(0.0 <= s < 10.0 for s in scores) and len(set(scores)) == 200
    assert 3.5 < sum(scores) / len(scores) < 6.5


def test_top1_is_a_uniform_pick_among_valid_samples():
    """Over many prompts each of 4 positions wins about a quarter of the time; empty samples never win."""
    prompts = {f"p{i}": _prompt(i) for i in range(800)}
    samples = [
        Sample(f"it1-p{i}-{k}", f"p{i}", iteration=1, index=k, text="" if k == 4 else f"answer {k}", num_tokens=2)
        for i in range(800)
        for k in range(5)
    ]
    items = [JudgeItem(s.id, prompts[s.prompt_id], s.text) for s in samples]
    judgments = build_judge(judge_config(method="random"), engine=None, tasks={}).judge(items).judgments
    kept = select(prompts, samples, judgments, "top_k", 1, None)
    assert len(kept) == 800  # one per prompt, none dropped
    wins = Counter(e.completion for e in kept)
    assert "" not in wins and set(wins) == {f"answer {k}" for k in range(4)}
    assert all(150 < n < 250 for n in wins.values()), wins  # 200 expected each


def test_uniform_score_depends_on_the_salt():
    assert uniform_score("a") != uniform_score("a", salt="other")
