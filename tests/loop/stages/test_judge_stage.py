"""The judge stage alone: judgments, the judge's statistics as metrics, the failure limit."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from stage_world import LengthJudge, prompt

from autodidact.errors import AutodidactError
from autodidact.loop.runner import Runner
from autodidact.loop.stages import SUPERVISED, Judge
from autodidact.records import Judgment, Sample


def _samples(ctx, n: int = 4):
    with ctx.store.transaction():
        ctx.store.add_prompts([prompt("p1"), prompt("h", split="heldout")])
        ctx.store.add_samples([Sample(f"it1-p1-{k}", "p1", 1, k, "x" * (k + 1), 1) for k in range(n)])
        ctx.store.add_samples([Sample("it1-h-0", "h", 1, 0, "held-out answer", 3, origin="heldout")])


def test_judge_scores_the_training_samples_and_stores_its_statistics(stage_ctx):
    ctx = stage_ctx()
    _samples(ctx)

    Runner(ctx, SUPERVISED).run_stage(Judge(), 1)

    assert ctx.store.judgments(1) == [Judgment(f"it1-p1-{k}", "length", float(k + 1)) for k in range(4)]
    assert ctx.store.metric(1, "judged") == 4.0
    assert ctx.store.stage_info(1, "judge") == {"judged": 4.0, "judgments": 4, "failed": 0, "judge_tokens": 0, "peak_rss_mib": ANY}


def test_too_many_failed_judgments_raise_before_anything_is_stored(stage_ctx):
    ctx = stage_ctx(LengthJudge(fail_every=2), judge={"max_failed_share": 0.25})
    _samples(ctx)

    with pytest.raises(AutodidactError, match="2 of 4 training judgments failed"):
        Runner(ctx, SUPERVISED).run_stage(Judge(), 1)

    assert ctx.store.judgments(1) == [] and not ctx.store.stage_done(1, "judge")
