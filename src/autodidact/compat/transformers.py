"""Workarounds of transformers' internals (written for transformers 5.25.0).

Canaries: tests/compat/test_compat_transformers.py.
"""

from __future__ import annotations

import inspect
from typing import Any


def cache_argument(model) -> str:
    """The name under which `model.forward` takes a KV cache: "cache", or "past_key_values" before the rename.

    Why: transformers 5.25 renamed `past_key_values` to `cache` (the old name warns and goes in 5.40); a
    cache passed under a name the forward does not know would be swallowed by its `**kwargs` and silently
    ignored, so the name is read from the signature rather than assumed.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper forwards **kwargs
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def repeat_cache_rows(cache, n: int) -> None:
    """Repeat every row of a filled `StaticCache` `n` times in place (row i becomes rows i*n .. i*n+n-1).

    Why (transformers 5.25): `StaticCache` offers no batch resize of its own
    (`StaticLayer` has no `batch_repeat_interleave`), yet one prefill per
    prompt shared by its `n` samples saves n-1 prefills. Each layer keeps its
    tensors in `layer.keys` / `layer.values`, (batch, heads, max_len, head_dim),
    and writes the next position into whatever tensors those attributes hold,
    so replacing them resizes the batch.
    """
    for layer in cache.layers:
        layer.keys = layer.keys.repeat_interleave(n, dim=0)
        layer.values = layer.values.repeat_interleave(n, dim=0)


def select_cache_rows(cache, keep) -> None:
    """Keep only the rows `keep` (a 1-D index tensor) of a filled `StaticCache`, in place.

    Why (transformers 5.25): as `repeat_cache_rows`; finished sequences are
    dropped from the batch so later steps compute only the live ones.
    """
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, keep)
        layer.values = layer.values.index_select(0, keep)


def point_tensorboard_at(trainer, log_dir: str) -> None:
    """Make `trainer`'s TensorBoard callback write under `log_dir` instead of its output directory.

    Why (transformers 5.25): `TrainingArguments.logging_dir` is gone in
    transformers 5, so the callback falls back to a folder under `output_dir`
    (a temporary directory here); its `logging_dir` attribute, read when
    training begins (`on_train_begin`), is the only way left to point it
    elsewhere.
    """
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = log_dir


def gguf_tensor_processors() -> tuple[dict[str, Any], type]:
    """transformers' GGUF tensor processors by architecture, and the default one: `(TENSOR_PROCESSORS, TensorProcessor)`.

    Why (transformers 5.25): the permutations transformers applies when it
    reads a GGUF file (e.g. llama's q/k heads) live only in the private module
    `transformers.modeling_gguf_pytorch_utils`; the export checks every tensor
    it writes by reading it back through the same processor, so that a change
    on either side fails the export instead of writing a file that loads wrong.
    """
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    return TENSOR_PROCESSORS, TensorProcessor
