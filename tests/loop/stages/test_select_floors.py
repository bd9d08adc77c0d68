"""The select stage with a floor per iteration, and the examples the train stage reads with replay_base."""

from __future__ import annotations

from stage_world import prompt

from autodidact.loop.stages import Select
from autodidact.loop.stages.inputs import training_examples
from autodidact.records import Judgment, Sample, SFTExample


def _store_judged(store, iteration: int, scores: dict[str, list[float]]) -> None:
    """One sample per score for each prompt (texts 'PROMPT-INDEX'), judged by the length judge's name."""
    samples = [Sample(f"it{iteration}-{p}-{k}", p, iteration, k, f"{p}-{k}", 1) for p in scores for k in range(len(scores[p]))]
    judgments = [Judgment(f"it{iteration}-{p}-{k}", "length", s) for p in scores for k, s in enumerate(scores[p])]
    with store.transaction():
        if iteration == 1:
            store.add_prompts([prompt(p) for p in scores])
        store.add_samples(samples)
        store.add_judgments(judgments)


def test_select_keeps_what_reaches_the_floor_of_its_iteration(stage_ctx):
    ctx = stage_ctx(selection={"min_score": 1.0, "min_score_schedule": [5.0, 7.5]})
    scores = {"p1": [4.0, 9.0], "p2": [6.0, 2.0], "p3": [7.5, 1.0]}
    for it in (1, 2, 3):
        _store_judged(ctx.store, it, scores)

    kept = {it: [e.sample_id for e in Select().run(ctx, it).examples] for it in (1, 2, 3)}

    assert kept == {1: ["it1-p1-1", "it1-p2-0", "it1-p3-0"], 2: ["it2-p1-1", "it2-p3-0"], 3: ["it3-p1-1", "it3-p3-0"]}


def _example(iteration: int, p: str, text: str) -> SFTExample:
    return SFTExample(f"it{iteration}-{p}-0", p, prompt(p).messages, text, 5.0)


def test_replay_adds_iteration_1s_examples_once_and_only_after_iteration_1(stage_ctx):
    ctx = stage_ctx(selection={"replay_base": True})
    first = [_example(1, "p1", "a"), _example(1, "p2", "b"), _example(1, "p3", "c")]
    second = [_example(2, "p2", "b"), _example(2, "p4", "d")]  # p2's answer "b" was selected again
    for it in (1, 2):
        _store_judged(ctx.store, it, {p: [5.0] for p in ("p1", "p2", "p3", "p4")})
    with ctx.store.transaction():
        ctx.store.add_selection(1, first)
        ctx.store.add_selection(2, second)

    assert training_examples(ctx.store, ctx.config, 1) == first
    assert training_examples(ctx.store, ctx.config, 2) == second + [first[0], first[2]]
    assert training_examples(ctx.store, ctx.config, 3) == first  # an iteration that selected nothing still replays
    plain = stage_ctx()
    assert training_examples(ctx.store, plain.config, 2) == second  # replay_base off: the selection alone
