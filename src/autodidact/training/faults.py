"""Training faults: a non-finite loss or weight, or a held-out collapse; and putting the policy back.

A fault rolls the iteration back to the previous checkpoint. The policy's
weights are restored in place (the engines and judges hold references to
it), so nothing else has to be rebuilt.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from autodidact.config import RunConfig


class TrainingFault(Exception):
    """Training went wrong in a way that must not reach the next iteration; the message says how."""


def check_training(policy, loss: float | None) -> None:
    """Raise `TrainingFault` when the loss or any trainable weight is NaN or infinite."""
    if loss is not None and not math.isfinite(loss):
        raise TrainingFault(f"non-finite training loss ({loss})")
    for name, param in policy.named_parameters():
        if param.requires_grad and not torch.isfinite(param).all():
            raise TrainingFault(f"non-finite weights after training ({name})")


def check_heldout(previous: float | None, current: float | None, max_drop: float | None) -> None:
    """Raise `TrainingFault` when the held-out metric fell by more than `max_drop` in one iteration."""
    if max_drop is None or previous is None or current is None:
        return
    if current < previous - max_drop:
        raise TrainingFault(
            f"held-out metric collapsed from {previous:.3f} to {current:.3f} (more than "
            f"stopping.max_metric_drop={max_drop:g})"
        )


@torch.no_grad()
def restore_policy(policy, config: RunConfig, checkpoint: str | None) -> None:
    """Put the policy's weights back to `checkpoint` (None: the base model), in place.

    LoRA: the adapter weights are loaded from the checkpoint; back to the base
    model, every LoRA layer is initialised afresh by PEFT (lora_B = 0, so the
    adapter adds nothing; lora_A drawn anew, seeded by the run's seed, so a
    corrupted A cannot survive). Full fine-tuning: every weight is reloaded.
    """
    if config.training.finetune == "lora":
        if checkpoint is None:
            torch.manual_seed(config.seed)
            for module in policy.modules():
                if hasattr(module, "reset_lora_parameters") and hasattr(module, "lora_A"):
                    for adapter in list(module.lora_A.keys()):
                        module.reset_lora_parameters(adapter, True)
            return
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(policy, load_file(str(Path(checkpoint) / "adapter_model.safetensors")))
        return
    from autodidact.models import load_model

    source, _ = load_model(checkpoint or config.model.name, config.model.dtype, config.model.device)
    policy.load_state_dict(source.state_dict())
