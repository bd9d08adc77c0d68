"""Training: SFT and DPO on the selected data, GRPO online; through TRL, LoRA through PEFT."""

from autodidact.training.checkpoints import load_policy, save_checkpoint
from autodidact.training.dpo import train_dpo
from autodidact.training.grpo import train_grpo
from autodidact.training.rollouts import RolloutRecorder
from autodidact.training.sft import forward_kept, init_adapters, prepare_policy, train_sft
from autodidact.training.trainer import TrainResult

__all__ = [
    "RolloutRecorder",
    "TrainResult",
    "forward_kept",
    "init_adapters",
    "load_policy",
    "prepare_policy",
    "save_checkpoint",
    "train_dpo",
    "train_grpo",
    "train_sft",
]
