"""Supervised fine-tuning on selected samples with TRL's `SFTTrainer`.

The data is in TRL's conversational prompt-completion form, so the loss
falls on the assistant response only (`completion_only_loss`). The trainer
updates the live model object in place: the engine that shares it generates
with the new weights at once.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from autodidact.config import TrainingConfig
from autodidact.records import SFTExample
from autodidact.tracking import TrainerReport
from autodidact.training.trainer import TrainResult, run_trainer, trainer_arguments

log = logging.getLogger(__name__)


def prepare_policy(model, config: TrainingConfig, seed: int = 0):
    """Wrap the model for training: LoRA adapters (default) or all weights trainable.

    The LoRA weights are drawn from `seed` (see `init_adapters`), never from
    wherever torch's global RNG happens to be, and that RNG is left as it was.
    """
    if config.finetune == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    with _own_rng(model):  # PEFT builds its layers with default (random) inits: keep them off the global RNG
        policy = get_peft_model(model, lora)
    init_adapters(policy, seed)
    return policy


def init_adapters(policy, seed: int) -> None:
    """Draw every LoRA layer's weights afresh from `seed`: lora_A as PEFT does (Kaiming), lora_B = 0.

    Why: PEFT draws lora_A from torch's global RNG, whose state depends on
    everything the process did before (another run, a trainer's `set_seed`).
    A run killed and resumed would then train iteration 1 from other random
    A matrices than the uninterrupted run, and every later metric would
    differ. Seeded here, the adapter of a seed is the same in every process.
    The draw (seed, then `reset_lora_parameters` over the modules in order)
    is the one `training.faults.restore_policy` makes when it rolls a run
    back to the base model, so a rolled-back run and its resume agree too.
    """
    with _own_rng(policy, seed):
        for module in policy.modules():
            if hasattr(module, "reset_lora_parameters") and hasattr(module, "lora_A"):
                for adapter in list(module.lora_A.keys()):
                    module.reset_lora_parameters(adapter, True)


@contextmanager
def _own_rng(model, seed: int | None = None) -> Iterator[None]:
    """Torch's RNG forked (CPU and the model's CUDA devices), seeded with `seed` if given; restored on exit.

    What is drawn inside neither depends on nor changes the caller's RNG state.
    """
    import torch

    devices = {p.device for p in model.parameters()}
    cuda = sorted(
        {d.index if d.index is not None else torch.cuda.current_device() for d in devices if d.type == "cuda"}
    )
    with torch.random.fork_rng(devices=cuda):
        if seed is not None:
            if devices <= {torch.device("cpu")} | {torch.device("cuda", i) for i in cuda}:
                torch.random.default_generator.manual_seed(seed)
                for index in cuda:
                    torch.cuda.default_generators[index].manual_seed(seed)
            else:  # another accelerator (mps, ...): seed every generator (not restored on exit)
                torch.manual_seed(seed)
        yield


@contextmanager
def forward_kept(model) -> Iterator[None]:
    """Put back, when training ends, every module's `forward` and `config.use_cache` as they were before.

    TRL's trainers (SFT, DPO, GRPO) replace the model's `forward` with a fused
    LM head (`trl.trainer.utils.add_fused_lm_head`) and leave it there. Its
    closure calls the original module's forward, so the engine's merged copy
    of a LoRA policy (a deep copy) silently ran the unmerged live model after
    the first training: slower, and scored a trained policy a few ulp away from
    the same weights loaded from its checkpoint, so a resumed run's metrics
    differed from the unkilled run's. Each training also wrapped the last patch.
    """
    modules = list(model.modules())
    forwards = [module.__dict__.get("forward") for module in modules]
    configs = [
        (c, c.use_cache)
        for c in {id(m.config): m.config for m in modules if hasattr(getattr(m, "config", None), "use_cache")}.values()
    ]
    try:
        yield
    finally:
        for module, forward in zip(modules, forwards):
            if forward is None:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = forward
        for config, use_cache in configs:
            config.use_cache = use_cache


def _trainer_class(sft_trainer: type) -> type:
    """SFTTrainer with the model's own loss on CPU.

    TRL computes the loss with a chunked, fused LM head that saves memory on
    GPUs; on a CPU it scores the vocabulary tile by tile and recomputes it in
    the backward pass, which was 35% of a training step on the bundled model.
    The model's own loss (the labels the SFT collator built, prompt tokens
    masked) gives the same value in one matmul.
    """
    from transformers import Trainer

    class CPUFriendlySFTTrainer(sft_trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if next(model.parameters()).device.type != "cpu":
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs = {k: v for k, v in inputs.items() if k != "completion_mask"}
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return CPUFriendlySFTTrainer


def train_sft(
    model,
    tokenizer,
    examples: Sequence[SFTExample],
    config: TrainingConfig,
    seed: int,
    report: TrainerReport = TrainerReport(),
) -> TrainResult:
    """One SFT pass over `examples`, updating `model` in place."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    start = time.perf_counter()
    if not examples:
        log.warning("no selected samples: the model is not trained this iteration")
        return TrainResult(0, 0, 0, None, 0.0)
    rows = [
        {"prompt": list(ex.messages), "completion": [{"role": "assistant", "content": ex.completion}]}
        for ex in examples
    ]
    with tempfile.TemporaryDirectory(prefix="autodidact-sft-") as workdir, forward_kept(model):
        args = SFTConfig(**trainer_arguments(config, model, workdir, seed, report), completion_only_loss=True)
        trainer = _trainer_class(SFTTrainer)(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )
        tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        output = run_trainer(trainer, config, report)
    model.eval()
    return TrainResult(
        examples=len(examples),
        steps=output.global_step,
        tokens=int(tokens_per_epoch * config.epochs),
        loss=float(output.training_loss),
        seconds=time.perf_counter() - start,
    )
