"""Direct preference optimization on best-vs-worst pairs with TRL's `DPOTrainer`.

The reference model is the previous iteration's model, that is the policy as
it is when `train_dpo` starts, and no second copy of the model is held:

- The reference log-probabilities of every pair are computed once, before the
  first update (`precompute_ref_log_probs`), so the reference is needed only
  then, not during training.
- With LoRA the policy is a `PeftModel` whose adapter carries every earlier
  iteration's training, so switching the adapter off would give the base
  model, not the previous iteration. Given a `PeftModel` and no `ref_model`,
  TRL 1.x clones the adapter into a frozen adapter (`compat.trl.REFERENCE_ADAPTER`)
  and computes the reference with it: an adapter-sized copy, not a model-sized one. Once
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
from collections.abc import Sequence

from autodidact.compat import trl as trl_compat
from autodidact.compat.tqdm import quiet
from autodidact.config import TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.records import PreferencePair
from autodidact.tracking import TrainerReport
from autodidact.training.trainer import TrainResult, TRLMethod, train_with

log = logging.getLogger(__name__)


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
        report: where the trainer logs.

    Returns:
        The pairs trained on, optimizer steps, non-padding tokens of both
        sequences of each pair over all epochs, mean loss, and seconds.

    Raises:
        AutodidactError: every pair's prompt alone fills `config.max_length`
            (TRL drops such pairs: there would be nothing to train on).
    """
    from trl import DPOConfig, DPOTrainer

    if pairs:
        _check_prompt_lengths(tokenizer, pairs, config.max_length)
    rows = [
        {
            "prompt": list(p.messages),
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]

    def trainer(model, args, data, tok):
        try:
            with quiet():  # the reference pass draws a tqdm bar of its own
                built = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
            trl_compat.check_reference_clone(model)
        finally:
            trl_compat.drop_reference_clone(model)
        return built

    def tokens(trainer) -> int:
        data = trainer.train_dataset
        per_epoch = sum(
            min(len(p) + len(c), config.max_length) + min(len(p) + len(r), config.max_length)
            for p, c, r in zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])
        )
        return int(per_epoch * config.epochs)

    method = TRLMethod(
        name="dpo",
        nothing="no preference pairs",
        arguments=lambda common: DPOConfig(**common, beta=config.dpo_beta, precompute_ref_log_probs=True),
        trainer=trainer,
        examples=lambda trainer: len(trainer.train_dataset),
        tokens=tokens,
    )
    result = train_with(method, model, tokenizer, rows, config, seed, report)
    if pairs and result.examples < len(pairs):
        dropped = len(pairs) - result.examples
        log.warning("%d of %d pairs dropped: their prompt alone fills training.max_length", dropped, len(pairs))
    return result


def _check_prompt_lengths(tokenizer, pairs: Sequence[PreferencePair], max_length: int) -> None:
    shortest_prompt = min(
        len(tokenizer.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=True, return_dict=False))
        for p in pairs
    )
    if shortest_prompt >= max_length:
        raise AutodidactError(
            f"every preference pair's prompt is at least training.max_length={max_length} tokens long, "
            f"so no response would be trained on; raise training.max_length above {shortest_prompt}."
        )
