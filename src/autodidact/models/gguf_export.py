"""Trained weights as a GGUF file for llama.cpp (and what runs on it: Ollama, LM Studio, llama-server).

Faithful by construction, for a base that came from a GGUF file (`model.name: default`, the bundled
SmolLM2, or a `.gguf` path): transformers dequantized that file into the checkpoint the run trained,
and `write_gguf` reverses that load tensor by tensor.

- Metadata and tokenizer (vocabulary, merges, special tokens, chat template) are copied from the
  source file unchanged; only `general.file_type` changes.
- Tensor names: the GGUF -> transformers map that transformers loads with (`get_gguf_hf_weights_map`),
  read backwards.
- Layout: llama.cpp stores the rows of `attn_q` / `attn_k` permuted for its rotary kernel, and
  transformers' `LlamaTensorProcessor` un-permutes them on load. `_permute` re-applies llama.cpp's
  permutation (`LlamaModel.permute` in its `convert_hf_to_gguf.py`), and every written tensor is read
  back through transformers' own processor and compared exactly, so a change on either side fails the
  export instead of writing a wrong file.
- Types: 2-D weights in `dtype` (F32, F16 or BF16); 1-D tensors (norms) in F32, as llama.cpp's
  converter writes them. Nothing is re-quantized: the file is larger than a Q4 source (quantize it
  afterwards with llama.cpp's `llama-quantize` if you need to).
- Source tensors transformers does not load (`rope_freqs.weight`) are not trained; they are copied.

Only the `llama` GGUF architecture (Llama, Mistral, SmolLM) is supported. transformers rewrites other
architectures' tensors in other ways on load (Gemma's norms shifted by one, GPT-2's transposes, MoE
experts split), and those inverses are neither written nor verified here, so they raise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from autodidact.compat.transformers import gguf_tensor_processors
from autodidact.errors import AutodidactError
from autodidact.models import bundled_gguf

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("llama",)
COPIED_TENSORS = ("rope_freqs.weight",)  # in some llama GGUFs, never loaded by transformers, never trained
GGUF_FILE = "model.gguf"


def source_gguf(model_spec: str) -> Path:
    """The GGUF file `model.name` was loaded from.

    Raises:
        AutodidactError: the base model did not come from a GGUF file.
    """
    if model_spec == "default":
        return bundled_gguf()
    path = Path(model_spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise AutodidactError(
        f"GGUF export needs a base model loaded from a GGUF file (model.name 'default' or a .gguf path), not "
        f"'{model_spec}': its tokenizer and metadata are copied from that file. Export the Hugging Face format and "
        "convert it with llama.cpp's convert_hf_to_gguf.py instead."
    )


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order for attn_q / attn_k: (out, in) -> (out, in), each head's rotary halves interleaved."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def _tensor_names(arch: str, num_layers: int, state: dict[str, Any]) -> dict[str, str]:
    """GGUF tensor name -> transformers parameter name, with the name table transformers loads GGUF files with.

    The top level of transformers' `get_gguf_hf_weights_map` (which also walks every submodule, ~8 s for
    the bundled model, to catch Bloom-style prefixes that llama models do not have).
    """
    import gguf

    arch_id = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)
    table = gguf.get_tensor_name_map(arch_id, num_layers)
    names = {}
    for hf_name in state:
        stem, dot, suffix = hf_name.rpartition(".")
        gguf_name = table.get_name(stem) if suffix in ("weight", "bias") else None
        if gguf_name is not None:
            names[f"{gguf_name}{dot}{suffix}"] = hf_name
    return names


def _check_source(reader: Any, source: Path, config: Any) -> str:
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise AutodidactError(
            f"GGUF export: '{source.name}' has architecture '{arch}'; only {', '.join(SUPPORTED_ARCHITECTURES)} "
            "can be written back faithfully here (transformers changes other architectures' tensors on load in ways "
            "not inverted here). Export the Hugging Face format and convert it with llama.cpp's convert_hf_to_gguf.py."
        )
    heads = (_field(reader, f"{arch}.attention.head_count"), _field(reader, f"{arch}.attention.head_count_kv"))
    if heads != (config.num_attention_heads, config.num_key_value_heads):
        raise AutodidactError(
            f"GGUF export: '{source.name}' has {heads[0]} attention heads ({heads[1]} key/value), the trained model "
            f"{config.num_attention_heads} ({config.num_key_value_heads}); it is not this model's source file."
        )
    return arch


def write_gguf(model: Any, source: Path, out: Path, dtype: str = "float16") -> Path:
    """Write `model` (a merged, plain transformers causal LM) as a GGUF file laid out like `source`.

    Args:
        model: the trained weights, e.g. `models.merge.merged_model(...)`'s model.
        source: the GGUF file the base model was converted from (`source_gguf(model.name)`).
        out: the file to write (written under a temporary name, then renamed).
        dtype: 'float32', 'float16' or 'bfloat16' for the 2-D weights.

    Returns:
        `out`.

    Raises:
        AutodidactError: an unsupported architecture, a source file that does not match the model,
            or a tensor that would not load back into the same weights.
    """
    import gguf

    processors, default_processor = gguf_tensor_processors()

    qtypes = {"float32": gguf.GGMLQuantizationType.F32, "float16": gguf.GGMLQuantizationType.F16,
              "bfloat16": gguf.GGMLQuantizationType.BF16}
    file_types = {"float32": gguf.LlamaFileType.ALL_F32, "float16": gguf.LlamaFileType.MOSTLY_F16,
                  "bfloat16": gguf.LlamaFileType.MOSTLY_BF16}
    if dtype not in qtypes:
        raise AutodidactError(f"GGUF export: dtype '{dtype}'; choose one of {', '.join(qtypes)}.")
    source, out = Path(source), Path(out)
    reader = gguf.GGUFReader(source)
    cfg = model.config
    arch = _check_source(reader, source, cfg)
    heads = {"num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads}
    processor = processors.get(arch, default_processor)(config=heads)
    state = model.state_dict()
    hf_names = _tensor_names(arch, cfg.num_hidden_layers, state)

    plan: list[tuple[Any, str | None]] = []  # (source tensor, transformers name or None to copy it)
    for tensor in reader.tensors:
        name = hf_names.get(tensor.name)
        if name is None or name not in state:
            if tensor.name not in COPIED_TENSORS:
                raise AutodidactError(f"GGUF export: tensor '{tensor.name}' of '{source.name}' has no trained weight.")
            plan.append((tensor, None))
            continue
        want = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists dimensions innermost first
        if tuple(state[name].shape) != want:
            raise AutodidactError(
                f"GGUF export: '{name}' is {tuple(state[name].shape)}, '{tensor.name}' in '{source.name}' is {want}; "
                "the model was not converted from this file."
            )
        plan.append((tensor, name))
    written = {name for _, name in plan if name}
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    # A tied lm_head is the embedding itself: llama.cpp reuses token_embd when the file has no output.weight.
    lost = sorted(
        n for n, t in state.items() if n not in written and not (tied and t.data_ptr() == head.weight.data_ptr())
    )
    if lost:
        raise AutodidactError(
            f"GGUF export: {len(lost)} trained tensors have no place in '{source.name}' (first: {lost[0]}); "
            "export the Hugging Face format instead."
        )

    def layout(gguf_name: str, weights: np.ndarray) -> np.ndarray:
        """transformers' weights in llama.cpp's layout, proven by loading them back through transformers."""
        if ".attn_q." in gguf_name:
            weights_out = _permute(weights, cfg.num_attention_heads)
        elif ".attn_k." in gguf_name:
            weights_out = _permute(weights, cfg.num_key_value_heads)
        else:
            weights_out = weights
        back = processor.process(weights=weights_out, name=gguf_name).weights
        if not np.array_equal(back, weights):
            raise AutodidactError(
                f"GGUF export: '{gguf_name}' would not load back into the trained weights with this transformers "
                "version's GGUF reader; the file is not written. Export the Hugging Face format instead."
            )
        return weights_out

    def encoded(gguf_name: str, name: str) -> np.ndarray:
        weights = layout(gguf_name, state[name].detach().to("cpu").float().numpy())
        return gguf.quants.quantize(weights, qtypes[dtype] if weights.ndim > 1 else gguf.GGMLQuantizationType.F32)

    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(tmp, arch)
    try:
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
                continue  # written by the writer itself
            if field.name == gguf.Keys.General.FILE_TYPE:
                writer.add_file_type(int(file_types[dtype]))
            elif field.name == gguf.Keys.General.ALIGNMENT:
                writer.add_custom_alignment(int(field.contents()))
            else:
                kind = field.types[0]
                sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
                writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
        if gguf.Keys.General.FILE_TYPE not in reader.fields:
            writer.add_file_type(int(file_types[dtype]))
        # Two passes, one tensor in memory at a time: the header needs every tensor's size first.
        for tensor, name in plan:
            if name is None:
                writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                       tensor.tensor_type)
                continue
            shape = tuple(state[name].shape)
            qtype = qtypes[dtype] if len(shape) > 1 else gguf.GGMLQuantizationType.F32
            size = int(np.prod(shape)) * (4 if qtype == gguf.GGMLQuantizationType.F32 else 2)
            if qtype == gguf.GGMLQuantizationType.BF16:  # stored as raw bytes: shape in bytes
                writer.add_tensor_info(tensor.name, (*shape[:-1], shape[-1] * 2), np.dtype(np.uint8), size, qtype)
            else:
                np_dtype = np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16
                writer.add_tensor_info(tensor.name, shape, np.dtype(np_dtype), size)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor, name in plan:
            data = tensor.data if name is None else encoded(tensor.name, name)
            writer.write_tensor_data(data, tensor_endianess=reader.endianess if name is None else None)
        writer.close()
        tmp.rename(out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote %s (%s, %d tensors) from %s", out, dtype, len(plan), source.name)
    return out


__all__ = ["GGUF_FILE", "SUPPORTED_ARCHITECTURES", "source_gguf", "write_gguf"]
