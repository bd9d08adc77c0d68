"""Supervised fine-tuning on selected samples with TRL's `SFTTrainer`.

The data is in TRL's conversational prompt-completion form, so the loss
falls on the assistant response only (`completion_only_loss`). The trainer
updates the live model object in place: the engine that shares it generates
with the new weights at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from autodidact.compat.trl import model_loss_on_cpu
from autodidact.config import TrainingConfig
from autodidact.records import SFTExample
from autodidact.tracking import TrainerReport
from autodidact.training.trainer import TrainResult, TRLMethod, train_with

__all__ = ["train_sft"]


def train_sft(
    model,
    tokenizer,
    examples: Sequence[SFTExample],
    config: TrainingConfig,
    seed: int,
    report: TrainerReport = TrainerReport(),
) -> TrainResult:
    """One SFT pass over `examples`, updating `model` in place.

    Returns:
        The examples trained on, optimizer steps, non-padding tokens (prompt +
        completion) over all epochs, mean loss, and seconds.
    """
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": list(ex.messages), "completion": [{"role": "assistant", "content": ex.completion}]}
        for ex in examples
    ]
    method = TRLMethod(
        name="sft",
        nothing="no selected samples",
        arguments=lambda common: SFTConfig(**common, completion_only_loss=True),
        trainer=lambda model, args, data, tok: model_loss_on_cpu(SFTTrainer)(
            model=model, args=args, train_dataset=data, processing_class=tok
        ),
        examples=lambda trainer: len(examples),
        tokens=lambda trainer: int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * config.epochs),
    )
    return train_with(method, model, tokenizer, rows, config, seed, report)
