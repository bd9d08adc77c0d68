"""The generate stage and GRPO's draw alone, against a store holding the run's prompts."""

from __future__ import annotations

from unittest.mock import ANY

from stage_world import prompt

from autodidact.engines import SamplingParams
from autodidact.loop.runner import Runner
from autodidact.loop.stages import ONLINE, SUPERVISED, Generate, OnlineDraw
from autodidact.loop.stages.inputs import draw_prompts
from autodidact.tasks import get_task


def _with_prompts(ctx, n: int = 5):
    with ctx.store.transaction():
        ctx.store.add_prompts([prompt(f"a{i}", task="arithmetic") for i in range(n)] + [prompt("h", "arithmetic", "heldout")])
    ctx.tasks["arithmetic"] = get_task("arithmetic")


def test_generate_stores_n_samples_per_drawn_prompt_with_origin_generated(stage_ctx):
    ctx = stage_ctx(generation={"samples_per_prompt": 3, "max_new_tokens": 7, "top_p": 0.9}, seed=4)
    _with_prompts(ctx)
    drawn = [p.id for p in draw_prompts(ctx.store, ctx.config, 1)]

    Runner(ctx, SUPERVISED).run_stage(Generate(), 1)

    samples = ctx.store.samples(1)
    assert len(drawn) == 2  # tasks.prompts_per_iteration
    assert sorted((s.id, s.text, s.index, s.num_tokens, s.origin) for s in samples) == sorted(
        (f"it1-{pid}-{k}", f"answer {k}", k, k + 1, "generated") for pid in drawn for k in range(3)
    )
    [(rendered, params)] = ctx.engine.calls
    assert rendered == [f"question {pid}" for pid in drawn]
    assert params == SamplingParams(3, ctx.config.generation.temperature_at(1), 0.9, 7, seed=4 * 1000 + 1)
    assert ctx.store.stage_info(1, "generate") == {"prompts": 2, "samples": 6, "tokens": 2 * (1 + 2 + 3), "peak_rss_mib": ANY}


def test_the_online_draw_stores_no_sample_and_the_train_stage_can_draw_it_again(stage_ctx):
    ctx = stage_ctx(training={"method": "grpo"})
    _with_prompts(ctx)

    Runner(ctx, ONLINE).run_stage(OnlineDraw(), 2)

    info = ctx.store.stage_info(2, "generate")
    assert info == {"prompts": 2, "prompt_ids": [p.id for p in draw_prompts(ctx.store, ctx.config, 2)], "online": True, "peak_rss_mib": ANY}
    assert ctx.store.samples(2) == [] and ctx.engine.calls == []
    assert [s.name for s in ONLINE.stages] == ["generate", "train", "evaluate", "monitor"]
