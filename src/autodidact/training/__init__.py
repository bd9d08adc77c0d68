"""Training on the selected samples: SFT through TRL, LoRA through PEFT."""

from autodidact.training.checkpoints import load_policy, save_checkpoint
from autodidact.training.sft import TrainResult, prepare_policy, train_sft

__all__ = ["TrainResult", "load_policy", "prepare_policy", "save_checkpoint", "train_sft"]
