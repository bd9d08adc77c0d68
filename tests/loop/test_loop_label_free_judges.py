"""The label-free signals of issue 20 judge a whole run: built by the loop on its wrapped judge engine,
each training sample judged and the kept ones drawn from what they scored."""

from __future__ import annotations

import pytest
from tests.loop.test_loop import tiny_config

import autodidact
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore


@pytest.mark.parametrize("method", ["self_certainty", "reverse_likelihood", "semantic_agreement", "self_examples"])
def test_a_run_judged_by_a_label_free_signal_keeps_its_best_scored_samples(tiny_llama, tmp_path, method):
    config = tiny_config(tiny_llama, tmp_path, max_iterations=1)
    config["judge"] = {"method": method}
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.run(config)
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        prompts = {p.id for p in store.prompts(split="train")}
        samples = [s for s in store.samples(1) if s.prompt_id in prompts]
        ids = {s.id for s in samples}
        judgments = {j.sample_id: j for j in store.judgments(1, method) if j.sample_id in ids}  # not held-out's
        assert set(judgments) == ids  # every training sample judged by this signal
        scored = {sid: j.score for sid, j in judgments.items() if j.score is not None}
        assert scored and all(0.0 <= v <= 10.0 for v in scored.values())
        for example in store.selection(1):  # top 1 per prompt: no other valid sample of it scored higher
            rivals = [scored[s.id] for s in samples if s.prompt_id == example.prompt_id and s.id in scored]
            assert example.score == max(rivals)
