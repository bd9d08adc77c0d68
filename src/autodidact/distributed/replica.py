"""One engine replica: the body of a Ray actor that holds a model and serves shards.

A plain class, made a Ray actor by `ray.remote` at start-up, so it can be
built and tested in-process too. It builds the policy exactly as the loop
does (`load_policy`, the run's seeded adapter) and wraps it in the same
`TransformersEngine`, so a shard it serves gives the numbers the loop's own
engine would give for that shard's batches.
"""

from __future__ import annotations

from collections.abc import Sequence

from autodidact.config import RunConfig
from autodidact.engines import Completion, SamplingParams, TransformersEngine
from autodidact.progress import set_quiet
from autodidact.training import init_adapters, load_policy


class EngineReplica:
    """A `TransformersEngine` on the run's policy (base weights or a checkpoint).

    Args:
        config: the run's config (model spec, fine-tuning mode, batch sizes, seed).
        checkpoint: the checkpoint folder to serve, or None for the base model.
    """

    def __init__(self, config: RunConfig, checkpoint: str | None = None):
        from transformers.utils import logging as hf_logging

        # Bars of many replicas would interleave in the driver's console (Ray forwards their output); the driver
        # shows one bar over shards.
        set_quiet(True)
        hf_logging.disable_progress_bar()
        self.config = config
        self.engine: TransformersEngine | None = None
        self.load_checkpoint(checkpoint)

    def load_checkpoint(self, checkpoint: str | None) -> None:
        """Serve `checkpoint` (None: the base model) from now on.

        Always read from disk, even for the path already served: a rolled-back
        iteration is trained again and saved under the same name.
        """
        self.engine = None  # drop the old weights before loading the new ones
        policy, tokenizer = load_policy(self.config, checkpoint)
        if checkpoint is None and self.config.training.finetune == "lora":
            init_adapters(policy, self.config.seed)  # the adapter the loop's fresh policy gets
        policy.requires_grad_(False)
        c = self.config
        self.engine = TransformersEngine(
            policy, tokenizer, batch_size=c.generation.batch_size, score_batch_size=c.judge.batch_size
        )

    def ready(self) -> int:
        """The replica's process id, once its model is loaded (the driver waits on this)."""
        import os

        return os.getpid()

    def generation_batches(self, prompts: Sequence[str], params: SamplingParams) -> list[list[int]]:
        return self.engine.generation_batches(prompts, params)

    def scoring_batches(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[int]]:
        return self.engine.scoring_batches(prompts, continuations)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, batches: Sequence[Sequence[int]]
    ) -> list[list[Completion]]:
        return self.engine.generate(prompts, params, batches=batches)

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], batches: Sequence[Sequence[int]], reference: str
    ) -> list[list[float]]:
        return self.engine.continuation_logprobs(prompts, continuations, batches=batches, reference=reference)
