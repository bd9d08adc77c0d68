"""Training: SFT and DPO on the selected data, GRPO online; through TRL, LoRA through PEFT.

`policy` loads, prepares, seeds and restores the trainable policy; `trainer`
is the one skeleton that `sft`, `dpo` and `grpo` fill in.
"""

from autodidact.training.dpo import train_dpo
from autodidact.training.grpo import train_grpo
from autodidact.training.policy import init_adapters, load_policy, prepare_policy, save_checkpoint
from autodidact.training.rollouts import RolloutRecorder
from autodidact.training.sft import train_sft
from autodidact.training.trainer import TrainResult

__all__ = [
    "RolloutRecorder",
    "TrainResult",
    "init_adapters",
    "load_policy",
    "prepare_policy",
    "save_checkpoint",
    "train_dpo",
    "train_grpo",
    "train_sft",
]
