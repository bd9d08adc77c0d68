"""A whole run with `model.engine: server` on a real llama.cpp server (needs the loop wired to it).

The loop must build its engine with `autodidact.engines.serving.build_policy_engine` and hand each
iteration's checkpoint to `engine.load_checkpoint(path, iteration)` after the train stage (see
docs/SERVERS.md). Then one iteration on the bundled model: the policy generates and judges itself on
the server, trains here, and 'merged' restarts the server on the exported GGUF before the held-out
evaluation, which therefore runs on the trained weights.
"""

from __future__ import annotations

import pytest
import torch

import autodidact
from autodidact.loop import STORE_FILE
from autodidact.models import bundled_gguf
from autodidact.store import RunStore
from llama_server import LlamaServer, needs_llama_server, wait_until_listed

pytestmark = [needs_llama_server, pytest.mark.integration]


@pytest.fixture(autouse=True)
def one_torch_thread():
    # The llama.cpp server shares the 2 cores: torch's 2-thread pool would wait ~10 ms per op.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_one_iteration_generates_on_the_server_and_hands_it_the_merged_weights(tmp_path):
    server = LlamaServer(bundled_gguf(), tmp_path)
    try:
        result = autodidact.run({
            "name": "srv",
            "output_dir": str(tmp_path / "runs"),
            "model": {"name": "default", "engine": "server",
                      "server": {"url": server.url, "reload": "merged", "restart_command": server.restart_command(),
                                 "concurrency": 2}},
            "tasks": {"train_size": 6, "heldout_size": 4, "prompts_per_iteration": 3},
            "generation": {"samples_per_prompt": 2, "max_new_tokens": 16},
            "evaluation": {"max_new_tokens": 16},
            "training": {"lora_r": 2, "lora_alpha": 4, "batch_size": 4},
            "monitors": {"diversity": {"prompts": 0}},
            "stopping": {"max_iterations": 1},
        })
        assert [row["iteration"] for row in result.iterations] == [0, 1]
        run_dir = tmp_path / "runs" / "srv"
        gguf = (run_dir / "served" / "iter-1" / "model.gguf").resolve()
        assert gguf.is_file()
        assert wait_until_listed(server.url) == str(gguf)  # the server now runs the trained weights

        with RunStore(run_dir / STORE_FILE) as store:
            # held-out and paraphrased held-out answers of both evaluations, train samples
            samples = store.samples(0) + store.samples(1)
            judgments = store.judgments(1, "direct")
        # Every sample came from the server: it saw at least one /completions request per sample.
        requests = server.log.read_text().count("POST /v1/completions")
        assert len(samples) == 2 * 4 * 2 + 2 * 4 * 2 + 2 * 3 * 2 and requests >= len(samples)
        # The policy judged itself on the server with log-probabilities: real scores, not failures.
        assert judgments and sum(j.score is not None for j in judgments) >= len(judgments) - 1
    finally:
        server.stop()
