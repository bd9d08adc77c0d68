"""The trainable policy: loaded (from the model spec or a checkpoint), prepared (LoRA or full), its
adapters drawn from the run's seed, saved per iteration, and restored in place.

One draw of the LoRA weights serves every path that needs fresh adapters (a
new run, a run rolled back to the base model, a replica of the policy in
another process): `init_adapters`, on an RNG of its own seeded by the run's
seed, so the same seed gives the same adapter whatever the process did before.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autodidact.config import RunConfig, TrainingConfig
from autodidact.models import load_model


def load_policy(config: RunConfig, checkpoint: str | None):
    """The trainable policy `(model, tokenizer)` for a run, from `checkpoint` if given.

    With LoRA the base weights come from the model spec and the adapter from
    the checkpoint; with full fine-tuning the checkpoint is the whole model.
    Without a checkpoint the adapter is drawn from `config.seed`.
    """
    m = config.model
    return policy_from(m.name, checkpoint, config.training, m.dtype, m.device, seed=config.seed)


def policy_from(base: str | None, checkpoint: str | None, training: TrainingConfig, dtype: str, device: str,
                seed: int = 0):
    """The trainable policy `(model, tokenizer)`: `base` prepared afresh, or `checkpoint` on `base`.

    Args:
        base: the model spec (unused with full fine-tuning from a checkpoint, which is the whole model).
        checkpoint: an adapter folder (LoRA) or a whole model (full), or None for fresh adapters.
        training: `finetune` and the LoRA settings.
        dtype: the model's dtype.
        device: where the weights go.
        seed: draws the fresh adapter (LoRA, no checkpoint).
    """

    if checkpoint is None:
        model, tokenizer = load_model(base, dtype, device)
        return prepare_policy(model, training, seed=seed), tokenizer
    if training.finetune == "full":
        model, tokenizer = load_model(checkpoint, dtype, device)
        return prepare_policy(model, training), tokenizer
    from peft import PeftModel

    model, tokenizer = load_model(base, dtype, device)
    return PeftModel.from_pretrained(model, checkpoint, is_trainable=True), tokenizer


def prepare_policy(model, config: TrainingConfig, seed: int = 0):
    """Wrap the model for training: LoRA adapters (default) or all weights trainable.

    The LoRA weights are drawn from `seed` (see `init_adapters`), never from
    wherever torch's global RNG happens to be, and that RNG is left as it was.
    """
    if config.finetune == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    with _own_rng(model):  # PEFT builds its layers with default (random) inits: keep them off the global RNG
        policy = get_peft_model(model, lora)
    init_adapters(policy, seed)
    return policy


def init_adapters(policy, seed: int) -> None:
    """Draw every LoRA layer's weights afresh from `seed`: lora_A as PEFT does (Kaiming), lora_B = 0.

    Why: PEFT draws lora_A from torch's global RNG, whose state depends on
    everything the process did before (another run, a trainer's `set_seed`).
    A run killed and resumed would then train iteration 1 from other random
    A matrices than the uninterrupted run, and every later metric would
    differ. Seeded here, the adapter of a seed is the same in every process,
    and `restore_policy` rolls a run back to the base model with this draw.
    """
    with _own_rng(policy, seed):
        for module in policy.modules():
            if hasattr(module, "reset_lora_parameters") and hasattr(module, "lora_A"):
                for adapter in list(module.lora_A.keys()):
                    module.reset_lora_parameters(adapter, True)


@contextmanager
def _own_rng(model, seed: int | None = None) -> Iterator[None]:
    """Torch's RNG forked (CPU and the model's CUDA devices), seeded with `seed` if given; restored on exit.

    What is drawn inside neither depends on nor changes the caller's RNG state.
    """
    import torch

    devices = {p.device for p in model.parameters()}
    cuda = sorted(
        {d.index if d.index is not None else torch.cuda.current_device() for d in devices if d.type == "cuda"}
    )
    with torch.random.fork_rng(devices=cuda):
        if seed is not None:
            if devices <= {torch.device("cpu")} | {torch.device("cuda", i) for i in cuda}:
                torch.random.default_generator.manual_seed(seed)
                for index in cuda:
                    torch.cuda.default_generators[index].manual_seed(seed)
            else:  # another accelerator (mps, ...): seed every generator (not restored on exit)
                torch.manual_seed(seed)
        yield


def save_checkpoint(model, tokenizer, path: Path) -> Path:
    """Save the adapter (LoRA) or the whole model (full) with the tokenizer to `path`.

    Written under a temporary name, then renamed: a killed save never leaves a
    directory under the final name, so a resumed run never loads a partial one.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if path.exists():  # a previous attempt finished the rename but not the store commit
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def restore_policy(policy, config: RunConfig, checkpoint: str | None) -> None:
    """Put the policy's weights back to `checkpoint` (None: the base model), in place.

    LoRA: the adapter weights are loaded from the checkpoint; back to the base
    model, every LoRA layer is drawn afresh from the run's seed (`init_adapters`:
    lora_B = 0, so the adapter adds nothing; lora_A anew, so a corrupted A
    cannot survive). Full fine-tuning: every weight is reloaded.
    """
    import torch

    with torch.no_grad():
        if config.training.finetune == "full":

            source, _ = load_model(checkpoint or config.model.name, config.model.dtype, config.model.device)
            policy.load_state_dict(source.state_dict())
        elif checkpoint is None:
            init_adapters(policy, config.seed)
        else:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(policy, load_file(str(Path(checkpoint) / "adapter_model.safetensors")))
