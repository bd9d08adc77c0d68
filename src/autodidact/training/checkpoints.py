"""Per-iteration checkpoints: written under a temporary name, then renamed.

A killed save never leaves a directory under the final name, so a resumed run
can never load a partial checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from autodidact.config import RunConfig


def save_checkpoint(model, tokenizer, path: Path) -> Path:
    """Save the adapter (LoRA) or the whole model (full) with the tokenizer to `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if path.exists():  # a previous attempt finished the rename but not the store commit
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def load_policy(config: RunConfig, checkpoint: str | None):
    """The trainable policy `(model, tokenizer)` for a run, from `checkpoint` if given.

    With LoRA the base weights come from the model spec and the adapter from
    the checkpoint; with full fine-tuning the checkpoint is the whole model.
    """
    from autodidact.models import load_model
    from autodidact.training.sft import prepare_policy

    m = config.model
    if checkpoint is None:
        model, tokenizer = load_model(m.name, m.dtype, m.device)
        return prepare_policy(model, config.training, seed=config.seed), tokenizer
    if config.training.finetune == "full":
        model, tokenizer = load_model(checkpoint, m.dtype, m.device)
        return prepare_policy(model, config.training), tokenizer
    from peft import PeftModel

    model, tokenizer = load_model(m.name, m.dtype, m.device)
    return PeftModel.from_pretrained(model, checkpoint, is_trainable=True), tokenizer
