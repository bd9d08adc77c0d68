"""Supervised fine-tuning on selected samples with TRL's `SFTTrainer`.

The data is in TRL's conversational prompt-completion form, so the loss
falls on the assistant response only (`completion_only_loss`). The trainer
updates the live model object in place: the engine that shares it generates
with the new weights at once.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from autodidact.config import TrainingConfig
from autodidact.progress import progress_bar
from autodidact.records import SFTExample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    examples: int
    steps: int
    tokens: int  # non-padding tokens seen, prompt + response, all epochs
    loss: float | None
    seconds: float


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


def _progress_callback(total_steps: int):
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        """Trainer progress as a rich bar, like generation and judging."""

        def __init__(self):
            self._bar = progress_bar("training", total=total_steps, unit="steps")
            self._advance = None

        def on_train_begin(self, args, state, control, **kwargs):
            self._advance = self._bar.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            self._advance(1)

        def on_train_end(self, args, state, control, **kwargs):
            self._bar.__exit__(None, None, None)

    return RichProgress()


def train_sft(model, tokenizer, examples: Sequence[SFTExample], config: TrainingConfig, seed: int) -> TrainResult:
    """One SFT pass over `examples`, updating `model` in place."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    start = time.perf_counter()
    if not examples:
        log.warning("no selected samples: the model is not trained this iteration")
        return TrainResult(0, 0, 0, None, 0.0)
    rows = [
        {"prompt": list(ex.messages), "completion": [{"role": "assistant", "content": ex.completion}]}
        for ex in examples
    ]
    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory(prefix="autodidact-sft-") as workdir:
        args = SFTConfig(
            output_dir=workdir,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            num_train_epochs=config.epochs,
            learning_rate=config.learning_rate,
            lr_scheduler_type="constant",  # each iteration is short; a decay to 0 would waste its tail
            warmup_steps=0,
            max_length=config.max_length,
            completion_only_loss=True,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=seed,
            use_cpu=device.type == "cpu",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        batches = len(trainer.get_train_dataloader())
        total_steps = math.ceil(batches * config.epochs / config.gradient_accumulation_steps)
        trainer.add_callback(_progress_callback(total_steps))
        tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        output = trainer.train()
    model.eval()
    return TrainResult(
        examples=len(examples),
        steps=output.global_step,
        tokens=int(tokens_per_epoch * config.epochs),
        loss=float(output.training_loss),
        seconds=time.perf_counter() - start,
    )
