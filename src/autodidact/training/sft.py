"""Supervised fine-tuning on selected samples with TRL's `SFTTrainer`.

The data is in TRL's conversational prompt-completion form, so the loss
falls on the assistant response only (`completion_only_loss`). The trainer
updates the live model object in place: the engine that shares it generates
with the new weights at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from autodidact.compat.trl import labelled_head_on_cpu, model_loss_on_cpu
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
    *,
    padding_free: bool = False,
    labelled_head: bool = True,
) -> TrainResult:
    """One SFT pass over `examples`, updating `model` in place.

    Args:
        padding_free: each batch goes to the model as one row (1, tokens) of its examples end to end, with
            position ids restarting at 0 for each, instead of (batch, longest) padded rows; transformers turns
            the restarts into a block-diagonal causal mask, so no example attends to another and each example's
            loss and gradient are the padded ones (tests/training/test_sft_speed.py). The same batches, the
            same steps: only the padding is gone.
        labelled_head: on the CPU, the LM head runs only on positions that carry loss (`compat.trl.labelled_head_on_cpu`).
            Both train the same weights (tests/training/test_sft_speed.py). Measured side by side in one process
            (benchmarks/bench_training.py --epochs 1 --full-examples 16, 2 AVX2 cores, fp32, 2026-12-07): LoRA
            60.8 -> 72.2 trained tok/s with the labelled head (on by default), 71.0 with padding-free batches too
            (no further gain, so off by default); full fine-tuning 40.9 -> 49.2 -> 57.2.

    Returns:
        The examples trained on, optimizer steps, non-padding tokens (prompt +
        completion) over all epochs, mean loss, and seconds.
    """
    from trl import SFTConfig, SFTTrainer

    if any(ex.untrained for ex in examples):
        rows = masked_rows(tokenizer, examples)
    else:
        rows = [
            {"prompt": list(ex.messages), "completion": [{"role": "assistant", "content": ex.completion}]}
            for ex in examples
        ]
    trainer_class = model_loss_on_cpu(SFTTrainer)
    if labelled_head:
        trainer_class = labelled_head_on_cpu(trainer_class)
    method = TRLMethod(
        name="sft",
        nothing="no selected samples",
        arguments=lambda common: SFTConfig(**common, completion_only_loss=True),
        trainer=lambda model, args, data, tok: trainer_class(
            model=model, args=args, train_dataset=data, processing_class=tok, data_collator=_collator(tok, padding_free)
        ),
        examples=lambda trainer: len(examples),
        tokens=lambda trainer: int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * config.epochs),
    )
    return train_with(method, model, tokenizer, rows, config, seed, report)


def masked_rows(tokenizer, examples: Sequence[SFTExample]) -> list[dict[str, list[int]]]:
    """Tokenized rows whose loss skips each example's `untrained` spans, in TRL's processed form.

    Why by hand: TRL's prompt-completion form trains on the whole completion, and its `assistant_only_loss`
    needs `{% generation %}` markers that SmolLM2's chat template lacks. A row is what TRL's own
    conversational tokenization makes (the chat template rendered, then tokenized without added special
    tokens), with `completion_mask` 1 on the completion and the template's closing tokens, except on tokens
    that overlap an untrained span; TRL turns the mask into labels (-100 elsewhere).
    """
    rows = []
    for ex in examples:
        messages = list(ex.messages)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(
            messages + [{"role": "assistant", "content": ex.completion}], tokenize=False
        )
        start = full.index(ex.completion, len(prompt)) if ex.completion else len(prompt)
        skipped = [(start + a, start + b) for a, b in ex.untrained]
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        mask = [
            int(begin >= len(prompt) and not any(a < end and begin < b for a, b in skipped))
            for begin, end in encoded["offset_mapping"]
        ]
        rows.append({"input_ids": list(encoded["input_ids"]), "completion_mask": mask})
    return rows


def _collator(tokenizer, padding_free: bool):
    """TRL's own collator, padding-free or not (None: the trainer builds its default, padded one).

    Why we build it: `SFTConfig(padding_free=True)` refuses a `max_length` unless it also packs examples into
    max_length rows (`packing=True`), which would change the batches and the number of steps; with the collator
    given, TRL still truncates each example to `max_length` and the batches stay those of the padded path.
    """
    if not padding_free:
        return None
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)
