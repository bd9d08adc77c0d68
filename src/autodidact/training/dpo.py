"""Direct preference optimization on best-vs-worst pairs with TRL's `DPOTrainer`.

The reference model is the previous iteration's model, that is the policy as
it is when `train_dpo` starts, and no second copy of the model is held:

- The reference log-probabilities of every pair are computed once, before the
  first update (`precompute_ref_log_probs`), so the reference is needed only
  then, not during training.
- With LoRA the policy is a `PeftModel` whose adapter carries every earlier
  iteration's training, so switching the adapter off would give the base
  model, not the previous iteration. Given a `PeftModel` and no `ref_model`,
  TRL 1.x clones the adapter into a frozen adapter named "ref" and computes
  the reference with it: an adapter-sized copy, not a model-sized one. Once
  the log-probabilities are computed we delete that clone, so it is neither
  kept during training, nor saved in the checkpoint, nor cloned again next
  iteration. If TRL ever stops making the clone (it falls back to the base
  model then), we raise instead of training against the wrong reference.
- With full fine-tuning TRL computes them with the model itself, before training.

The data is TRL's conversational preference form (prompt messages, chosen and
rejected assistant messages), so the loss falls on the responses only. Like
SFT, the trainer updates the live model object in place.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from autodidact.config import TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.records import PreferencePair
from autodidact.tracking import TrainerReport
from autodidact.training.sft import forward_kept
from autodidact.training.trainer import TrainResult, run_trainer, trainer_arguments

log = logging.getLogger(__name__)

REFERENCE_ADAPTER = "ref"  # the name TRL gives its frozen clone of the policy's adapter


def train_dpo(
    model, tokenizer, pairs: Sequence[PreferencePair], config: TrainingConfig, seed: int,
    report: TrainerReport = TrainerReport(),
) -> TrainResult:
    """One DPO pass over `pairs`, updating `model` in place, with `model` as it is now as the reference.

    Args:
        model: the policy (a `PeftModel` with LoRA, the plain model with full fine-tuning).
        tokenizer: its tokenizer, with a chat template.
        pairs: this iteration's preference pairs.
        config: learning rate, batch size, epochs, `max_length`, `dpo_beta`.
        seed: training seed.

    Returns:
        The pairs trained on, optimizer steps, non-padding tokens of both
        sequences of each pair over all epochs, mean loss, and seconds.

    Raises:
        AutodidactError: every pair's prompt alone fills `config.max_length`
            (TRL drops such pairs: there would be nothing to train on).
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    start = time.perf_counter()
    if not pairs:
        log.warning("no preference pairs: the model is not trained this iteration")
        return TrainResult(0, 0, 0, None, 0.0)
    shortest_prompt = min(
        len(tokenizer.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=True, return_dict=False))
        for p in pairs
    )
    if shortest_prompt >= config.max_length:
        raise AutodidactError(
            f"every preference pair's prompt is at least training.max_length={config.max_length} tokens long, "
            f"so no response would be trained on; raise training.max_length above {shortest_prompt}."
        )
    rows = [
        {
            "prompt": list(p.messages),
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]
    # forward_kept: TRL leaves its fused-LM-head forward on the model after training (see sft.forward_kept).
    with tempfile.TemporaryDirectory(prefix="autodidact-dpo-") as workdir, forward_kept(model):
        args = DPOConfig(
            **trainer_arguments(config, model, workdir, seed, report),
            beta=config.dpo_beta,
            precompute_ref_log_probs=True,
        )
        try:
            with _tqdm_disabled():  # the reference pass draws a tqdm bar of its own
                trainer = DPOTrainer(
                    model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
                )
            _check_reference_was_the_current_adapter(model)
        finally:
            _drop_reference_adapter(model)
        data = trainer.train_dataset
        if len(data) < len(pairs):
            dropped = len(pairs) - len(data)
            log.warning("%d of %d pairs dropped: their prompt alone fills training.max_length", dropped, len(pairs))
        tokens_per_epoch = sum(
            min(len(p) + len(c), config.max_length) + min(len(p) + len(r), config.max_length)
            for p, c, r in zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])
        )
        output = run_trainer(trainer, config, report)
    model.eval()
    return TrainResult(
        examples=len(data),
        steps=output.global_step,
        tokens=int(tokens_per_epoch * config.epochs),
        loss=float(output.training_loss),
        seconds=time.perf_counter() - start,
    )


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "delete_adapter")


def _check_reference_was_the_current_adapter(model) -> None:
    if _is_peft(model) and REFERENCE_ADAPTER not in model.peft_config:
        raise RuntimeError(
            "TRL did not clone the LoRA adapter as the DPO reference, so the reference would be the base model "
            "instead of the previous iteration's model. Check the installed trl/peft versions (trl 1.x with "
            "peft >= 0.20 clones it)."
        )


def _drop_reference_adapter(model) -> None:
    if _is_peft(model) and REFERENCE_ADAPTER in model.peft_config:
        model.delete_adapter(REFERENCE_ADAPTER)


@contextmanager
def _tqdm_disabled() -> Iterator[None]:
    """Silence tqdm (it reads TQDM_DISABLE) for the duration; our own bars are rich."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = previous
