"""The one training skeleton SFT, DPO and GRPO fill in: rows -> dataset -> arguments -> TRL trainer -> train.

Every method runs a TRL trainer on the live policy for one iteration: a
constant learning rate (each iteration is short; a decay to 0 would waste its
tail), no checkpoints of the trainer's own (the loop saves one per
iteration), no tqdm or printed logs (a rich bar instead), on the CPU when the
model is there, and the model's `forward` as it was before (`compat.trl.forward_kept`).
A method says only what differs (`TRLMethod`): its TRL config and trainer,
and what it counts as examples and tokens.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autodidact.compat.trl import forward_kept
from autodidact.config import TrainingConfig
from autodidact.progress import progress_bar
from autodidact.tracking import TrainerReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    examples: int  # SFT examples, preference pairs or GRPO prompts trained on (per epoch)
    steps: int
    tokens: int  # non-padding tokens seen, prompt + response(s), all epochs
    loss: float | None
    seconds: float


def trainer_arguments(
    config: TrainingConfig, model, output_dir: str, seed: int, report: TrainerReport = TrainerReport()
) -> dict[str, Any]:
    """Keyword arguments common to TRL's `SFTConfig`, `DPOConfig` and `GRPOConfig` for one iteration's training.

    `report` names the run's tracker (report_to, run_name): it gets the trainer's loss and learning rate.
    """
    device = next(model.parameters()).device
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_length=config.max_length,
        logging_steps=1,
        save_strategy="no",
        **report.arguments(),
        seed=seed,
        use_cpu=device.type == "cpu",
        # Train in the dtype the model was loaded in (model.dtype 'auto' already picks bfloat16 where the
        # hardware computes it natively). TRL's default, bf16 autocast, would also leave accelerate's
        # autocast wrapper on the live model's forward after training, so every later generation and
        # judgment would silently run in bfloat16 too.
        bf16=False,
        # TRL turns gradient checkpointing on by default: it recomputes every layer's forward
        # during backward (+50% compute) to save activation memory that small models do not need.
        gradient_checkpointing=config.gradient_checkpointing,
        disable_tqdm=True,
        dataloader_num_workers=0,
        # Multi-process (DDP): every trainable parameter gets a gradient each step, so DDP need not walk the
        # graph looking for unused ones (an extra pass, and a warning per step). Ignored in one process.
        ddp_find_unused_parameters=False,
    )


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


def run_trainer(trainer, config: TrainingConfig, report: TrainerReport = TrainerReport()):
    """`trainer.train()` with our progress bar in place of the printed logs; returns its `TrainOutput`."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    report.attach(trainer)  # TensorBoard: the iteration's folder under RUN_DIR/tracking, not output_dir
    batches = len(trainer.get_train_dataloader())
    total_steps = math.ceil(batches * config.epochs / config.gradient_accumulation_steps)
    trainer.add_callback(_progress_callback(total_steps))
    return trainer.train()


@dataclass(frozen=True)
class TRLMethod:
    """What one training method fills into the skeleton (`train_with`)."""

    name: str  # names the trainer's temporary folder
    nothing: str  # logged when there is nothing to train on
    arguments: Callable[[dict[str, Any]], Any]  # the common TrainingArguments fields -> the method's TRL config
    trainer: Callable[[Any, Any, Any, Any], Any]  # (model, config, dataset, tokenizer) -> the TRL trainer
    examples: Callable[[Any], int]  # the trainer, trained -> examples trained on (per epoch)
    tokens: Callable[[Any], int]  # the trainer, trained -> non-padding tokens seen, all epochs


def train_with(
    method: TRLMethod,
    model,
    tokenizer,
    rows: list[dict[str, Any]],
    config: TrainingConfig,
    seed: int,
    report: TrainerReport = TrainerReport(),
) -> TrainResult:
    """Train `model` in place on `rows` (TRL's dataset form for `method`) for one iteration.

    Returns:
        What was trained: examples, optimizer steps, tokens, mean loss and
        seconds; all zero (loss None) when `rows` is empty.
    """
    from datasets import Dataset

    start = time.perf_counter()
    if not rows:
        log.warning("%s: the model is not trained this iteration", method.nothing)
        return TrainResult(0, 0, 0, None, 0.0)
    with tempfile.TemporaryDirectory(prefix=f"autodidact-{method.name}-") as workdir, forward_kept(model):
        args = method.arguments(trainer_arguments(config, model, workdir, seed, report))
        trainer = method.trainer(model, args, Dataset.from_list(rows), tokenizer)
        output = run_trainer(trainer, config, report)
    model.eval()
    return TrainResult(
        examples=method.examples(trainer),
        steps=output.global_step,
        tokens=method.tokens(trainer),
        loss=float(output.training_loss),
        seconds=time.perf_counter() - start,
    )
