"""Training faults: a non-finite loss or weight, or a held-out collapse; and putting the policy back.

A fault rolls the iteration back to the previous checkpoint. The policy's
weights are restored in place (`policy.restore_policy`, re-exported here: the
engines and judges hold references to it), so nothing else has to be rebuilt.
"""

from __future__ import annotations

import math

import torch

from autodidact.training.policy import restore_policy

__all__ = ["TrainingFault", "check_heldout", "check_training", "restore_policy"]


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
