"""Workarounds of TRL's internals (written for trl 1.16.0 with peft 0.21.2 and transformers 5.25).

Canaries: tests/compat/test_trl.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from autodidact.errors import AutodidactError

# TRL 1.16's DPOTrainer, given a `PeftModel` and no `ref_model`, clones the policy's adapter into a frozen adapter
# of this name and computes the reference log-probabilities with it (`DPOTrainer.__init__`, `add_adapter("ref")`).
REFERENCE_ADAPTER = "ref"


@contextmanager
def forward_kept(model) -> Iterator[None]:
    """Put back, when training ends, every module's `forward` and `config.use_cache` as they were before.

    Why (trl 1.16): TRL's trainers (SFT, DPO, GRPO) replace the model's
    `forward` with a fused LM head (`trl.trainer.utils.add_fused_lm_head`,
    an instance attribute) and leave it there. Its closure calls the original
    module's forward, so the engine's merged copy of a LoRA policy (a deep
    copy) silently ran the unmerged live model after the first training:
    slower, and scored a trained policy a few ulp away from the same weights
    loaded from its checkpoint, so a resumed run's metrics differed from the
    unkilled run's. Each training also wrapped the last patch. The trainers
    also turn `config.use_cache` off for training.
    """
    modules = list(model.modules())
    forwards = [module.__dict__.get("forward") for module in modules]  # instance attributes only, not the class's
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


def model_loss_on_cpu(sft_trainer: type) -> type:
    """`sft_trainer` (TRL's `SFTTrainer`) with the model's own loss when the model is on the CPU.

    Why (trl 1.16): `SFTTrainer.compute_loss` computes the loss with a
    chunked, fused LM head that saves memory on GPUs; on a CPU it scores the
    vocabulary tile by tile and recomputes it in the backward pass, which was
    35% of a training step on the bundled model. The model's own loss (the
    labels the SFT collator built, prompt tokens masked to -100) gives the
    same value in one matmul. A `completion_mask` (earlier TRL collators
    added one) is not a model input and is dropped.
    """
    from transformers import Trainer

    class CPUFriendlySFTTrainer(sft_trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if next(model.parameters()).device.type != "cpu":
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs = {k: v for k, v in inputs.items() if k != "completion_mask"}
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return CPUFriendlySFTTrainer


def labelled_head_on_cpu(sft_trainer: type) -> type:
    """`sft_trainer` (TRL's `SFTTrainer`) running the LM head only on positions that carry loss, on the CPU.

    Why (trl 1.16, transformers 5): on a CPU, TRL's fused LM head scores every
    position (it keeps only the labelled ones on Triton devices), and so does
    the model's own loss (`model_loss_on_cpu`). Prompt positions carry no
    loss, yet the 49k-vocabulary head (a fifth of the bundled model's FLOPs
    per token, forward and backward) and its softmax ran on them. The model's
    `logits_to_keep` takes a boolean (batch, seq) mask, so the head runs on
    the K positions whose next token is labelled, logits (K, vocab), and the
    loss is the cross-entropy the model's own loss computes: fp32, summed,
    over `num_items_in_batch` when the model takes loss kwargs (the whole
    accumulated batch), else over K, and scaled like `Trainer.compute_loss`.
    A model whose forward cannot take the mask (its head slices by an int)
    falls back to `sft_trainer`'s own loss, so pass `model_loss_on_cpu(SFTTrainer)`.
    """
    import torch
    import torch.nn.functional as F

    class LabelledHeadSFTTrainer(sft_trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if next(model.parameters()).device.type != "cpu":
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs = {k: v for k, v in inputs.items() if k != "completion_mask"}
            labels = inputs.pop("labels")  # (batch, seq), -100 where no loss
            keep = torch.zeros_like(labels, dtype=torch.bool)  # position t predicts token t + 1
            keep[:, :-1] = labels[:, 1:] != -100
            targets = labels[:, 1:][keep[:, :-1]]  # (K,)
            try:
                outputs = model(**inputs, use_cache=False, logits_to_keep=keep)  # logits (K, vocab)
            except (IndexError, RuntimeError):  # a model whose head slices only with an int: the full-head path
                outputs = None
            if outputs is None or outputs.logits.shape[:-1] != targets.shape:
                return super().compute_loss(model, {**inputs, "labels": labels}, return_outputs, num_items_in_batch)
            loss = F.cross_entropy(outputs.logits.float(), targets, reduction="sum")
            if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
                loss = loss / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            else:
                loss = loss / max(targets.numel(), 1)
            return (loss, outputs) if return_outputs else loss

    return LabelledHeadSFTTrainer


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "delete_adapter")


def check_reference_clone(model) -> None:
    """Raise when TRL did not clone a LoRA policy's adapter as `REFERENCE_ADAPTER` (the reference would be the base).

    Why (trl 1.16, peft 0.21): the DPO reference must be the previous
    iteration's model, which for a LoRA policy is its adapter; without the
    clone TRL falls back to the adapter switched off, i.e. the base model.
    """

    if _is_peft(model) and REFERENCE_ADAPTER not in model.peft_config:
        raise AutodidactError(
            "TRL did not clone the LoRA adapter as the DPO reference, so the reference would be the base model "
            "instead of the previous iteration's model; install trl 1.x with peft >= 0.20, which clone it "
            "(see autodidact.compat.trl.REFERENCE_ADAPTER)."
        )


def drop_reference_clone(model) -> None:
    """Delete TRL's `REFERENCE_ADAPTER` clone once the reference log-probabilities are computed.

    Why (trl 1.16): with `precompute_ref_log_probs` the clone is not needed
    during training; kept, it would be saved in the checkpoint and cloned
    again (as "ref" next to "ref") next iteration.
    """
    if _is_peft(model) and REFERENCE_ADAPTER in model.peft_config:
        model.delete_adapter(REFERENCE_ADAPTER)
