"""A run's checkpoint as one plain model: the LoRA adapter merged into its base, or a full fine-tune as it is.

Used by `autodidact export` and by the server engine's 'merged' reload, which both write these weights out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autodidact.models import load_model, resolve_model


def drop_quantization(model: Any) -> None:
    """Remove the GGUF quantization marker the bundled base carries."""
    # The bundled base came from a GGUF file; a leftover marker would make
    # transformers treat the plain float weights as quantized on load.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None


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
        from peft import PeftModel  # peft loads only when there is an adapter to merge

        # Merge in float32 whatever the target dtype: W + BA rounds once, at the end.
        base, tokenizer = load_model(model_name, "float32", "cpu")
        model = PeftModel.from_pretrained(base, str(checkpoint)).merge_and_unload()
        base_path = resolve_model(model_name)
    else:
        model, tokenizer = load_model(str(checkpoint), "float32", "cpu")
        base_path = str(checkpoint)
    drop_quantization(model)
    return model, tokenizer, base_path


__all__ = ["drop_quantization", "merged_model"]
