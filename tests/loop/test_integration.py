"""One small iteration on the bundled SmolLM2-135M-Instruct (the real model, offline)."""

from __future__ import annotations

import pytest

import autodidact
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore

pytestmark = pytest.mark.integration


def test_one_iteration_on_the_bundled_model(tmp_path):
    result = autodidact.run(
        {
            "name": "smol",
            "output_dir": str(tmp_path),
            "tasks": {"train_size": 8, "heldout_size": 6, "prompts_per_iteration": 3},
            "generation": {"samples_per_prompt": 2, "max_new_tokens": 24},
            "evaluation": {"max_new_tokens": 24},
            "stopping": {"max_iterations": 1},
        }
    )
    assert [row["iteration"] for row in result.iterations] == [0, 1]
    with RunStore(tmp_path / "smol" / STORE_FILE) as store:
        judgments = store.judgments(1, "direct")
        # 2 tasks x 3 prompts x 2 samples judged in training, plus 2 x 6 held-out answers.
        assert len(judgments) == 12 + 12
        # The log-prob judge on the real model puts real mass on the score tokens.
        assert sum(j.score is not None for j in judgments) == len(judgments)
        assert store.selection(1), "top-1 per prompt must select something"
    assert (tmp_path / "smol" / "checkpoints" / "iter-1" / "adapter_model.safetensors").is_file()
    # The base model answers some held-out arithmetic: the pipeline is not grading garbage.
    base = result.iterations[0]["tasks"]["arithmetic"]
    assert base["n"] == 6 and base["pass_rate"] is not None
