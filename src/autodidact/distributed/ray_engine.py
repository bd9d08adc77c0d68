"""`RayEngine`: generation and judging split into shards over Ray actors, results as if run in one process.

Why the results are identical to the single-process `TransformersEngine`:

1. A replica plans the request exactly as the in-process engine would
   (`generation_batches` / `scoring_batches`: which prompts share a batch,
   in which order), using the same model, tokenizer and batch sizes.
2. A shard is a run of whole batches. Its replica decodes or scores each
   batch with the same rows and padding as the single process, so every
   forward pass sees the same numbers.
3. Sampling draws from one generator per sample, seeded by (seed, prompt
   tokens, sample index) (`engines.decoding`), never from a shared RNG, so
   no sample depends on which replica or shard ran it.

Shards are reassembled by prompt index. A shard whose replica dies is run
again on another replica (`ReplicaPool`); a shard's result is taken from
exactly one run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodidact.config import DistributedConfig, RunConfig
from autodidact.distributed.replica import EngineReplica
from autodidact.engines import Completion, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.progress import progress_bar
from autodidact.records import Message

if TYPE_CHECKING:
    from autodidact.distributed.pool import PoolStats

log = logging.getLogger(__name__)

# Shards per replica in one request: more balances replicas of uneven speed and loses less work
# to a dead one; fewer costs fewer calls. A shard is never smaller than one batch.
SHARDS_PER_WORKER = 4

ShardCall = Callable[[Any, list[int], list[list[int]]], Any]  # (actor, global indices, local batches) -> ObjectRef


def group_batches(batches: Sequence[list[int]], shards: int) -> list[list[list[int]]]:
    """Split the batches, in order, into at most `shards` runs of whole batches, as even in count as possible."""
    shards = max(1, min(shards, len(batches)))
    size, extra = divmod(len(batches), shards)
    groups, start = [], 0
    for k in range(shards):
        end = start + size + (k < extra)
        groups.append(list(batches[start:end]))
        start = end
    return groups


def shard_inputs(shard: Sequence[list[int]]) -> tuple[list[int], list[list[int]]]:
    """A shard's global prompt indices (batch by batch) and its batches re-indexed into that list."""
    indices = [i for batch in shard for i in batch]
    local, start = [], 0
    for batch in shard:
        local.append(list(range(start, start + len(batch))))
        start += len(batch)
    return indices, local


def import_ray():
    """The `ray` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise AutodidactError(
            "distributed.backend 'ray' needs Ray: pip install 'autodidact[ray]' (or set distributed.backend=none)."
        ) from None
    return ray


def connect(d: DistributedConfig) -> bool:
    """Join the cluster at `d.address`, or start a local one for `d.workers` replicas.

    Returns whether this call connected (so the caller should disconnect with `ray.shutdown`);
    False when Ray was already initialised in this process (a test, a notebook).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if d.address:
        try:
            ray.init(address=d.address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise AutodidactError(
                f"distributed.address: cannot reach a Ray cluster at {d.address!r} ({exc}); start one with "
                "`ray start --head` or unset distributed.address for a local cluster."
            ) from None
        return True
    # Logical CPUs: exactly what the replicas reserve, whatever the machine has; GPUs are detected.
    ray.init(num_cpus=math.ceil(d.workers * d.cpus_per_worker), include_dashboard=False, logging_level=logging.WARNING)
    gpus = ray.cluster_resources().get("GPU", 0)
    if d.workers * d.gpus_per_worker > gpus:
        ray.shutdown()
        raise AutodidactError(
            f"distributed: {d.workers} workers x {d.gpus_per_worker} GPUs need {d.workers * d.gpus_per_worker:g} "
            f"GPUs, this machine has {gpus:g}; lower distributed.workers or gpus_per_worker."
        )
    return True


class RayEngine:
    """The `Engine` protocol over `distributed.workers` replicas of the policy on a Ray cluster.

    Build it with `from_config`. It also serves checkpoints (`load_checkpoint`):
    the replicas hold their own copies of the weights, so they must be told
    after each training step. Call `close()` when done.

    Args:
        config: the run's config; `distributed` sizes the pool, the rest builds each replica.
        tokenizer: the policy's tokenizer (renders chat templates here, in the driver).
        checkpoint: the checkpoint the replicas start on (None: the base model).
        replica_class: the actor's class (tests substitute one that fails on cue).
        owns_ray: call `ray.shutdown()` on `close()`.
    """

    supports_logprobs = True

    def __init__(
        self,
        config: RunConfig,
        tokenizer,
        checkpoint: str | Path | None = None,
        replica_class: type = EngineReplica,
        owns_ray: bool = False,
    ):
        ray = import_ray()
        # After import_ray, whose error names the `ray` extra: the pool imports Ray at module level.
        from autodidact.distributed.pool import ReplicaPool

        d = config.distributed
        self.config, self.tokenizer, self.owns_ray = config, tokenizer, owns_ray
        if d.gpus_per_worker == 0 and config.model.device == "auto":
            # Ray reserves no GPU for these replicas: 'auto' must not put them on one anyway.
            config = config.model_copy(update={"model": config.model.model_copy(update={"device": "cpu"})})
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        # max_restarts=0: a dead replica is replaced by the pool, which also knows which shard to run again.
        actor = ray.remote(replica_class).options(
            num_cpus=d.cpus_per_worker, num_gpus=d.gpus_per_worker, max_restarts=0, max_task_retries=0
        )
        self.pool = ReplicaPool(lambda: actor.remote(config, self.checkpoint), d.workers, d.max_shard_retries)

    @classmethod
    def from_config(cls, config: RunConfig, tokenizer, checkpoint: str | Path | None = None) -> RayEngine:
        """Connect to (or start) the cluster, start the replicas on `checkpoint` (None: the base model), wait for them.

        Raises:
            AutodidactError: Ray is missing, the cluster cannot be reached or lacks the GPUs asked for,
                or a replica cannot load the model.
        """
        owns = connect(config.distributed)
        engine = None
        try:
            engine = cls(config, tokenizer, checkpoint=checkpoint, owns_ray=owns)
            engine.pool.wait_ready()
            return engine
        except BaseException:
            if engine is not None:
                engine.close()
            elif owns:
                import_ray().shutdown()
            raise

    @property
    def stats(self) -> PoolStats:
        """Shards run, retried, and replicas replaced so far (`pool.PoolStats`)."""
        return self.pool.stats

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def _sharded(self, size: int, batches: list[list[int]], call: ShardCall, desc: str) -> list[Any]:
        """Run `call(actor, global indices, local batches)` per shard; the rows of all `size` prompts, in order."""
        shards = [shard_inputs(s) for s in group_batches(batches, SHARDS_PER_WORKER * len(self.pool.replicas))]
        tasks = [lambda actor, s=s: call(actor, *s) for s in shards]
        with progress_bar(desc, total=len(tasks), unit="shards") as advance:
            outputs = self.pool.run(tasks, on_done=lambda: advance(1))
        results: list[Any] = [None] * size
        for (indices, _), rows in zip(shards, outputs):
            if len(rows) != len(indices):  # never hand back a partial shard
                raise AutodidactError(f"distributed: a shard returned {len(rows)} rows for {len(indices)} prompts.")
            for i, row in zip(indices, rows):
                results[i] = row
        if any(row is None for row in results):
            raise AutodidactError("distributed: the shards did not cover every prompt; this is a bug, please report it.")
        return results

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating") -> list[list[Completion]]:
        """`params.n` samples per prompt, in prompt order: the single-process engine's samples, exactly."""
        prompts = list(prompts)
        if not prompts:
            return []
        batches = self.pool.run([lambda actor: actor.generation_batches.remote(prompts, params)])[0]

        def call(actor, indices, local):
            return actor.generate.remote([prompts[i] for i in indices], params, local)

        return self._sharded(len(prompts), batches, call, desc)

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        """log P(continuation | prompt), shape (P, C): the single-process engine's numbers, exactly."""
        prompts, continuations = list(prompts), list(continuations)
        if not prompts:
            return []
        batches = self.pool.run([lambda actor: actor.scoring_batches.remote(prompts, continuations)])[0]

        def call(actor, indices, local):
            # The whole request's first prompt fixes how continuations tokenize, in every shard.
            return actor.continuation_logprobs.remote([prompts[i] for i in indices], continuations, local, prompts[0])

        return self._sharded(len(prompts), batches, call, desc)

    def load_checkpoint(self, checkpoint: Path | None, iteration: int) -> None:
        """Serve `checkpoint` (a PEFT adapter or full-weights folder; None: the base model) on every replica.

        The folder must be readable at the same path on every machine of the cluster (a shared filesystem).
        """
        # Absolute, so a worker on another machine reads the shared folder, not its own working directory;
        # replacements start on it too.
        self.checkpoint = str(Path(checkpoint).resolve()) if checkpoint is not None else None
        log.info("Ray replicas: serving %s (iteration %d)", self.checkpoint or "the base model", iteration)
        self.pool.broadcast(lambda actor: actor.load_checkpoint.remote(self.checkpoint))

    def serve_base(self) -> None:
        """Serve the base model again on every replica (a rollback to iteration 0)."""
        self.load_checkpoint(None, 0)

    def close(self) -> None:
        """Stop the replicas, and Ray itself when `from_config` started or joined it."""
        if self.pool.replicas:
            self.pool.shutdown()
        if self.owns_ray:
            import_ray().shutdown()
            self.owns_ray = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
