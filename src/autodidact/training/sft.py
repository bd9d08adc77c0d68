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
from collections.abc import Sequence

from autodidact.config import TrainingConfig
from autodidact.records import SFTExample
from autodidact.tracking import TrainerReport
from autodidact.training.trainer import TrainResult, run_trainer, trainer_arguments

log = logging.getLogger(__name__)


def prepare_policy(model, config: TrainingConfig):
    """Wrap the model for training: LoRA adapters (default) or all weights trainable."""
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
    return get_peft_model(model, lora)


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
    model, tokenizer, examples: Sequence[SFTExample], config: TrainingConfig, seed: int,
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
    with tempfile.TemporaryDirectory(prefix="autodidact-sft-") as workdir:
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
