"""The select stage alone, on samples and judgments stored by the test."""

from __future__ import annotations

from unittest.mock import ANY

from stage_world import prompt

from autodidact.loop.runner import Runner
from autodidact.loop.stages import SUPERVISED, Select
from autodidact.records import Judgment, PreferencePair, Sample, SFTExample


def _store_judged(store, rewrite: bool = False):
    """Two prompts, three samples each (scores 3, 9, 5 and 7, None, 2), and an unjudged rewrite of p1's loser."""
    prompts = [prompt("p1"), prompt("p2")]
    texts = {"p1": ["a", "bbb", "cc"], "p2": ["dd", "e", "f"]}
    scores = {"p1": [3.0, 9.0, 5.0], "p2": [7.0, None, 2.0]}
    samples = [Sample(f"it1-{p}-{k}", p, 1, k, t, 1) for p in texts for k, t in enumerate(texts[p])]
    if rewrite:
        samples.append(Sample("it1-p1-rev0", "p1", 1, 4, "rewritten", 1, origin="revision"))
    judgments = [Judgment(f"it1-{p}-{k}", "length", s) for p in scores for k, s in enumerate(scores[p])]
    with store.transaction():
        store.add_prompts(prompts)
        store.add_samples(samples)
        store.add_judgments(judgments)
    return {p.id: p for p in prompts}


def test_select_keeps_each_prompts_best_judged_sample_and_commits_it_with_its_mark(stage_ctx):
    ctx = stage_ctx()
    prompts = _store_judged(ctx.store)

    Runner(ctx, SUPERVISED).run_stage(Select(), 1)

    assert ctx.store.selection(1) == [
        SFTExample("it1-p1-1", "p1", prompts["p1"].messages, "bbb", 9.0),
        SFTExample("it1-p2-0", "p2", prompts["p2"].messages, "dd", 7.0),
    ]
    assert ctx.store.stage_info(1, "select") == {"kept": 2, "peak_rss_mib": ANY}


def test_select_with_revise_adds_the_stored_rewrites(stage_ctx):
    ctx = stage_ctx(selection={"revise": True}, judge={"method": "contrastive"})
    _store_judged(ctx.store, rewrite=True)

    selected = Select().run(ctx, 1)

    assert [(e.sample_id, e.score) for e in selected.examples] == [("it1-p1-1", 9.0), ("it1-p2-0", 7.0), ("it1-p1-rev0", None)]
    assert selected.info() == {"revisions": 1, "kept": 3}
    assert not ctx.store.stage_done(1, "select")  # run() alone stores nothing


def test_select_for_dpo_pairs_best_and_worst_judged(stage_ctx):
    ctx = stage_ctx(training={"method": "dpo"})
    prompts = _store_judged(ctx.store)

    Runner(ctx, SUPERVISED).run_stage(Select(), 1)

    messages = prompts["p1"].messages
    assert ctx.store.pairs(1) == [
        PreferencePair("p1", messages, "bbb", "a", "it1-p1-1", "it1-p1-0", 9.0, 3.0),
        PreferencePair("p2", prompts["p2"].messages, "dd", "f", "it1-p2-0", "it1-p2-2", 7.0, 2.0),
    ]
    assert ctx.store.stage_info(1, "select") == {"pairs": 2, "peak_rss_mib": ANY}
