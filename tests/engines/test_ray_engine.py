"""RayEngine on a local 2-worker Ray cluster: results equal the single-process engine's, exactly.

One Ray cluster for the module (starting one costs seconds). Faults are
injected by files in a folder the test replicas watch: `hang` makes the
first replica that claims it stop mid-shard until the test `ray.kill`s it;
`crash` makes every replica that runs a shard exit at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'); RayEngine cannot be tested")

from autodidact.config import RunConfig  # noqa: E402
from autodidact.distributed.ray_engine import RayEngine, connect, group_batches, shard_inputs  # noqa: E402
from autodidact.distributed.replica import EngineReplica  # noqa: E402
from autodidact.engines import Engine, SamplingParams, ServesCheckpoints, TransformersEngine  # noqa: E402
from autodidact.errors import AutodidactError  # noqa: E402
from autodidact.training import init_adapters, load_policy, save_checkpoint  # noqa: E402

SAMPLED = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=5)
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=12)
SCORES = [str(i) for i in range(11)]  # "10" is two tokens: the multi-token path is exercised too


def faulty_replica(fault_dir: str) -> type:
    """An `EngineReplica` that fails on cue (defined in a function, so Ray ships it by value)."""

    class FaultyReplica(EngineReplica):
        def _fault(self) -> None:
            claimed = Path(fault_dir) / f"claimed-{os.getpid()}"
            try:
                os.rename(Path(fault_dir) / "hang", claimed)  # atomic: exactly one replica claims it
            except FileNotFoundError:
                pass
            else:
                claimed.write_text(ray.get_runtime_context().get_actor_id())
                time.sleep(120)  # mid-shard, until the test kills this replica
            if (Path(fault_dir) / "crash").exists():
                os._exit(1)

        def generate(self, prompts, params, batches):
            self._fault()
            return super().generate(prompts, params, batches)

        def continuation_logprobs(self, prompts, continuations, batches, reference):
            self._fault()
            return super().continuation_logprobs(prompts, continuations, batches, reference)

    return FaultyReplica
# Ray starts a 1-CPU actor with OMP_NUM_THREADS=1, so a replica computes with one torch thread; the single-process
# engine here must too, or a matmul summed by two threads in another order differs by an ulp from the replica's
# (seen on a 2-core machine: -5.9658303 vs -5.9658298). The autouse fixture sets one thread for this module.
from llama_server import one_torch_thread  # noqa: E402,F401


@pytest.fixture(scope="module")
def cluster():
    # 4 logical CPUs on any machine: the 2-worker engine, plus room for a second engine's replica.
    ray.init(num_cpus=4, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def config(tiny_llama) -> RunConfig:
    return RunConfig(
        model={"name": tiny_llama, "dtype": "float32", "device": "cpu"},
        generation={"batch_size": 6},  # 2 prompts x 3 samples per batch: many batches, so many shards
        judge={"batch_size": 3},
        distributed={"backend": "ray", "workers": 2, "max_shard_retries": 2},
    )


@pytest.fixture(scope="module")
def local(config):
    """The single-process engine, built as the loop builds it."""
    policy, tokenizer = load_policy(config, None)
    init_adapters(policy, config.seed)
    return TransformersEngine(policy, tokenizer, batch_size=config.generation.batch_size, score_batch_size=config.judge.batch_size)


@pytest.fixture(scope="module")
def prompts(local) -> list[str]:
    # Lengths differ, so batches pad differently and the plan reorders prompts (longest first).
    return [local.render([{"role": "user", "content": f"What is {i} + {3 * i}? " + "please " * (i % 4)}]) for i in range(10)]


@pytest.fixture(scope="module")
def expected(local, prompts) -> dict:
    return {
        "sampled": local.generate(prompts, SAMPLED),
        "greedy": local.generate(prompts, GREEDY),
        "scores": local.continuation_logprobs(prompts, SCORES),
    }


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def engine(cluster, config, local, fault_dir):
    with RayEngine(config, local.tokenizer, replica_class=faulty_replica(str(fault_dir))) as engine:
        yield engine


def test_shards_are_runs_of_whole_batches():
    batches = [[4, 1], [0, 3], [2], [5]]
    groups = group_batches(batches, 3)
    assert groups == [[[4, 1], [0, 3]], [[2]], [[5]]]
    assert group_batches(batches, 10) == [[b] for b in batches]
    assert shard_inputs(groups[0]) == ([4, 1, 0, 3], [[0, 1], [2, 3]])


def test_connect_leaves_a_running_ray_alone(cluster, config):
    assert connect(config.distributed) is False  # so close() will not shut down the caller's Ray


def test_ray_engine_equals_the_single_process_engine(engine, local, prompts, expected):
    assert isinstance(engine, Engine) and isinstance(engine, ServesCheckpoints)
    assert engine.render([{"role": "user", "content": "hi"}]) == local.render([{"role": "user", "content": "hi"}])
    assert engine.generate(prompts, SAMPLED) == expected["sampled"]
    assert engine.generate(prompts, GREEDY) == expected["greedy"]
    assert engine.continuation_logprobs(prompts, SCORES) == expected["scores"]  # bit for bit, not approximately
    assert engine.generate([], SAMPLED) == [] and engine.continuation_logprobs([], SCORES) == []
    assert len(local.generation_batches(prompts, SAMPLED)) == 5  # the request really was split
    assert engine.stats.retries == 0 and not engine.stats.replaced


def test_a_worker_killed_mid_shard_loses_and_duplicates_nothing(engine, local, prompts, expected, fault_dir):
    before = engine.stats.tasks
    (fault_dir / "hang").write_text("")
    killed: list[str] = []

    def kill_the_hanging_replica() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            claims = list(fault_dir.glob("claimed-*"))
            if claims and claims[0].read_text():
                actor_id = claims[0].read_text()
                for replica in engine.pool.replicas:
                    if replica.handle._actor_id.hex() == actor_id:
                        ray.kill(replica.handle)
                        killed.append(actor_id)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_hanging_replica)
    killer.start()
    result = engine.generate(prompts, SAMPLED)
    killer.join()
    assert killed, "no replica claimed the fault: the test covered nothing"
    assert result == expected["sampled"]  # complete, in order, nothing twice
    assert engine.stats.retries == 1 and len(engine.stats.replaced) == 1
    shards = len(group_batches(local.generation_batches(prompts, SAMPLED), 4 * 2))
    assert engine.stats.tasks - before == 1 + shards  # the plan, then each shard's result taken exactly once
    assert killed[0] not in {r.handle._actor_id.hex() for r in engine.pool.replicas}  # the dead one was replaced
    assert engine.continuation_logprobs(prompts, SCORES) == expected["scores"]  # the pool still serves


def test_retries_exhausted_raise_one_line_error(cluster, config, local, prompts, tmp_path):
    (tmp_path / "crash").write_text("")
    one = config.model_copy(update={"distributed": config.distributed.model_copy(update={"workers": 1, "max_shard_retries": 1})})
    with RayEngine(one, local.tokenizer, replica_class=faulty_replica(str(tmp_path))) as engine:
        with pytest.raises(AutodidactError, match="max_shard_retries") as err:
            engine.generate(prompts, GREEDY)
        assert "\n" not in str(err.value)
        assert len(engine.stats.replaced) == 2  # the first run and its one retry, each on a new replica


def _train_fake(policy, seed: int) -> None:
    """A "trained" adapter: nonzero lora_B, so outputs move."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)


def test_load_checkpoint_switches_every_replica(engine, config, local, prompts, expected, tmp_path):
    policy, tokenizer = load_policy(config, None)
    init_adapters(policy, config.seed)
    trained = TransformersEngine(policy, tokenizer, batch_size=config.generation.batch_size, score_batch_size=config.judge.batch_size)
    _train_fake(policy, 0)
    path = save_checkpoint(policy, tokenizer, tmp_path / "iter-1")
    want_sampled, want_scores = trained.generate(prompts, SAMPLED), trained.continuation_logprobs(prompts, SCORES)
    assert want_scores != expected["scores"]

    engine.load_checkpoint(path, 1)
    assert engine.generate(prompts, SAMPLED) == want_sampled
    assert engine.continuation_logprobs(prompts, SCORES) == want_scores

    _train_fake(policy, 1)  # the iteration rolled back, trained again, saved under the same name: read afresh
    save_checkpoint(policy, tokenizer, tmp_path / "iter-1")
    engine.load_checkpoint(path, 1)
    assert engine.continuation_logprobs(prompts, SCORES) == trained.continuation_logprobs(prompts, SCORES) != want_scores

    engine.load_checkpoint(None, 0)  # a rollback to the base model
    assert engine.continuation_logprobs(prompts, SCORES) == expected["scores"]


def test_a_replica_that_cannot_load_the_model_stops_with_its_reason(cluster, config, local, tmp_path):
    bad = config.model_copy(update={
        "model": config.model.model_copy(update={"name": str(tmp_path / "missing")}),
        "distributed": config.distributed.model_copy(update={"workers": 1}),
    })
    with pytest.raises(AutodidactError, match="could not load the model.*missing") as err:
        RayEngine.from_config(bad, local.tokenizer)  # not retried: every replica would fail the same way
    assert "\n" not in str(err.value)


def test_a_ray_run_equals_the_single_process_run(cluster, tiny_llama, tmp_path):
    """The whole loop with `distributed.backend: ray`: the same samples, judgments and metrics as one process."""
    from tests.loop.test_loop import tiny_config

    import autodidact
    from autodidact.loop import STORE_FILE
    from autodidact.store import RunStore

    def run(name: str, distributed: dict) -> dict:
        config = tiny_config(tiny_llama, tmp_path, name=name, max_iterations=1)
        config["generation"]["batch_size"] = 2  # one prompt's samples per batch: several shards per request
        config["judge"]["batch_size"] = 2
        autodidact.run(config | {"distributed": distributed})
        with RunStore(tmp_path / name / STORE_FILE) as store:
            return {
                table: store._all(f"SELECT * FROM {table} ORDER BY 1, 2")
                for table in ("samples", "judgments", "metrics", "checkpoints")
            }

    local = run("local", {"backend": "none"})
    sharded = run("ray", {"backend": "ray", "workers": 2})
    # train samples + held-out answers + paraphrased held-out answers (iterations 0, 1)
    assert len(local["samples"]) == 2 * 3 * 2 + 2 * 2 * 4 + 2 * 2 * 4
    for table in ("samples", "judgments", "metrics"):
        assert sharded[table] == local[table], table
    # The checkpoints differ only by the run directory in their path.
    assert [row[0] for row in sharded["checkpoints"]] == [row[0] for row in local["checkpoints"]] == [1]
