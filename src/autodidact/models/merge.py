"""A run's checkpoint as a model: a LoRA adapter on its base (`load_adapter`: chat, eval), or as one plain
model with the adapter merged in, or a full fine-tune as it is (`merged_model`: `autodidact export` and the
server engine's 'merged' reload, which both write these weights out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autodidact.errors import AutodidactError
from autodidact.models import load_model, resolve_model


def drop_quantization(model: Any) -> None:
    """Remove the GGUF quantization marker the bundled base carries."""
    # The bundled base came from a GGUF file; a leftover marker would make
    # transformers treat the plain float weights as quantized on load.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None


def load_adapter(
    checkpoint: Path, base: str | None = None, dtype: str = "auto", device: str = "auto", field: str = "model.name"
) -> tuple[Any, Any]:
    """(PeftModel, tokenizer): a LoRA checkpoint on its base model.

    Args:
        base: the base model spec (a run's `model.name`); None reads the one the checkpoint's
            adapter_config.json names (an adapter-only export, a checkpoint handed over alone).
        field: the option or key that named the checkpoint or its base, for errors.
    """
    from peft import PeftModel  # peft loads only when there is an adapter

    checkpoint = Path(checkpoint)
    if base is None:
        try:
            config = json.loads((checkpoint / "adapter_config.json").read_text(encoding="utf-8"))
            base = config["base_model_name_or_path"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AutodidactError(
                f"{field} '{checkpoint}': adapter_config.json cannot be read ({exc}); give a complete LoRA checkpoint."
            ) from None
    model, tokenizer = load_model(base, dtype, device, field=field)
    return PeftModel.from_pretrained(model, str(checkpoint)), tokenizer


def merged_model(model_name: str, checkpoint: Path) -> tuple[Any, Any, str]:
    """(model, tokenizer, base path): a checkpoint's weights as one plain float32 CPU model.

    Args:
        model_name: the run's `model.name`, the base an adapter checkpoint is merged into.
        checkpoint: a checkpoint directory (adapter files, or a full fine-tuned model).

    Returns:
        The merged model, its tokenizer, and the base model's local path (the checkpoint itself
        for a full fine-tune).
    """
    checkpoint = Path(checkpoint)
    if (checkpoint / "adapter_config.json").is_file():
        # Merge in float32 whatever the target dtype: W + BA rounds once, at the end.
        model, tokenizer = load_adapter(checkpoint, model_name, "float32", "cpu")
        model = model.merge_and_unload()
        base_path = resolve_model(model_name)
    else:
        model, tokenizer = load_model(str(checkpoint), "float32", "cpu")
        base_path = str(checkpoint)
    drop_quantization(model)
    return model, tokenizer, base_path


__all__ = ["drop_quantization", "load_adapter", "merged_model"]
