"""`autodidact export`: a run's checkpoint as a plain Hugging Face model directory, or a GGUF file.

The output loads with `transformers` alone (no import of this package):
merged LoRA weights (default) or the PEFT adapter files (`adapter_only`),
the tokenizer with its chat template, a short README and
`autodidact_export.json` (run, iteration and that iteration's metrics).
With `out_format="gguf"` the directory holds `model.gguf` instead of the
weights and tokenizer files: the merged weights for llama.cpp, written in the
layout of the GGUF file the base came from (see `autodidact.models.gguf_export`).

In an adapter-only export, `adapter_config.json`'s `base_model_name_or_path`
is the base model as the run loaded it: for `model.name: default` or a
`.gguf` file that is the local cached conversion (see `models.convert_gguf`),
so another machine must point `PeftModel.from_pretrained` at its own copy of
the base; the README names both the spec and that path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from autodidact.config import RunConfig, load_config
from autodidact.errors import AutodidactError, file_error
from autodidact.models.gguf_export import GGUF_FILE, source_gguf, write_gguf
from autodidact.models.merge import merged_model
from autodidact.stopping import best_phrase
from autodidact.store import RunStore

CONFIG_FILE, STORE_FILE = "config.yaml", "run.sqlite"  # as in autodidact.loop, without importing the loop
PROVENANCE_FILE = "autodidact_export.json"
DTYPES = ("float32", "bfloat16", "float16")
FORMATS = ("hf", "gguf")
OTHER_OUT = "choose another output directory"


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` holds a run (its config.yaml and run.sqlite)."""
    path = Path(path).expanduser()
    return (path / CONFIG_FILE).is_file() and (path / STORE_FILE).is_file()


def open_run(run_dir: Path) -> tuple[RunConfig, RunStore]:
    """The saved config and the store of a run directory; AutodidactError if it is not one."""
    run_dir = Path(run_dir).expanduser()
    if not is_run_dir(run_dir):
        raise AutodidactError(
            f"'{run_dir}' is not a run directory (no {CONFIG_FILE} and {STORE_FILE}). Check the path."
        )
    # Read-only: export, chat and eval never write to the run, which may sit in a read-only folder.
    return load_config(run_dir / CONFIG_FILE), RunStore(run_dir / STORE_FILE, read_only=True)


def trained_iterations(store: RunStore) -> list[int]:
    """Iterations that saved a checkpoint, in order."""
    last = store.last_checkpoint()
    return [] if last is None else [i for i in range(1, last[0] + 1) if store.checkpoint(i) is not None]


def pick_checkpoint(
    run_dir: Path, store: RunStore, iteration: str = "best", instead: str = "use --iteration {n} for another one"
) -> tuple[int, Path]:
    """(iteration, checkpoint directory) for "best", "last" or an iteration number.

    The folder is this run directory's own: a run copied without it is refused, naming `instead`
    (`{n}`: the last iteration whose folder is there) when another checkpoint is on disk.

    Raises:
        AutodidactError: the iteration has no checkpoint (the base model, iteration 0, never has one).
    """
    have = trained_iterations(store)
    listing = ", ".join(map(str, have)) or "none yet"
    if iteration == "best":
        best_meta = store.get_meta("best_iteration")
        best = store.best_checkpoint()
        if best_meta == "0":
            raise AutodidactError(
                f"{run_dir}: the run's best is {best_phrase(0, len(have))}, which has no checkpoint. "
                f"Export a trained one with --iteration last or a number (have: {listing})."
            )
        if best is None:
            why = "has no checkpoint yet; continue it with `autodidact resume` to train one"
            if have:
                why = "has not evaluated its checkpoints yet; use --iteration last or N"
            raise AutodidactError(f"{run_dir}: the run {why}.")
        number, path = best
    elif iteration == "last":
        last = store.last_checkpoint()
        if last is None:
            raise AutodidactError(f"{run_dir}: the run has no checkpoint yet; train at least one iteration first.")
        number, path = last
    else:
        try:
            number = int(iteration)
        except ValueError:
            raise AutodidactError(f"--iteration '{iteration}': use 'best', 'last' or an iteration number.") from None
        path = store.checkpoint(number)
        if path is None:
            what = f"iteration {number} has no checkpoint"
            if number == 0:
                what = "iteration 0 is the base model, which has no checkpoint"
            raise AutodidactError(f"{run_dir}: {what}. Choose one of: {listing}.")
    folder = Path(path)  # this run directory's own (`RunStore.resolve`), wherever the run was made
    if not folder.is_dir():
        others = [i for i in have if i != number and Path(store.checkpoint(i)).is_dir()]
        fix = (instead.format(n=others[-1]) + f" (on disk: {', '.join(map(str, others))})" if others
               else "copy the original run's checkpoints folder into it")
        raise AutodidactError(
            f"run '{run_dir}': checkpoint {folder.relative_to(run_dir).as_posix()} is missing (was the run copied "
            f"without it?); {fix}."
        )
    return number, folder


def _metrics(store: RunStore, iteration: int) -> dict[str, Any]:
    """{name: value} over all tasks, plus "tasks": {task: {name: value}}."""
    overall: dict[str, Any] = {}
    tasks: dict[str, dict[str, Any]] = {}
    for row in store.metrics(iteration):
        target = tasks.setdefault(row["task"], {}) if row["task"] else overall
        target[row["name"]] = row["value"]
    return overall | {"tasks": tasks}


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return flag or bool(constants.HF_HUB_OFFLINE)


def _check_out(out: Path) -> None:
    """`out` must be new or empty, and its folder (or the nearest existing one above) a writable folder."""
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise AutodidactError(f"'{out}' exists and is not empty; choose a new output directory or delete it first.")
    # The export is written beside `out` and renamed, so the folder that holds it must be writable.
    existing = next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise AutodidactError(f"'{existing}' is a file, so {out} cannot be made; {OTHER_OUT}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AutodidactError(f"cannot write to {existing} (read-only); {OTHER_OUT}.")


def _write_merged(config: RunConfig, checkpoint: Path, target: Path, dtype: str) -> str:
    """Save the merged (or full fine-tuned) model in `dtype` with its tokenizer; return the base model path."""
    import torch

    model, tokenizer, base_path = merged_model(config.model.name, checkpoint)
    model.to(getattr(torch, dtype))
    model.save_pretrained(target)  # safetensors
    tokenizer.save_pretrained(target)
    return base_path


def _write_adapter(config: RunConfig, checkpoint: Path, target: Path) -> str:
    """Copy the PEFT adapter and tokenizer files; return the base path the adapter names."""
    adapter_config = checkpoint / "adapter_config.json"
    if not adapter_config.is_file():
        raise AutodidactError(
            f"{checkpoint} holds full weights (training.finetune: full), not an adapter; export without --adapter-only."
        )
    target.mkdir(parents=True)
    for item in checkpoint.iterdir():
        if item.is_file() and item.name != "README.md":  # PEFT's model card template; ours replaces it
            shutil.copy2(item, target / item.name)
    return json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"]


def _write_gguf(config: RunConfig, checkpoint: Path, target: Path, dtype: str) -> str:
    """Write the merged model as `target/model.gguf`; return the base model path."""
    source = source_gguf(config.model.name)
    model, _, base_path = merged_model(config.model.name, checkpoint)
    target.mkdir(parents=True)
    write_gguf(model, source, target / GGUF_FILE, dtype)
    return base_path


def _readme(config: RunConfig, iteration: int, adapter_only: bool, base_path: str, out_format: str = "hf") -> str:
    title = f"# {config.name}, iteration {iteration}\n\nExported by `autodidact export` from a run.\n\n"
    if out_format == "gguf":
        return title + (
            f"Base model `{config.model.name}` with the run's training merged in, as one GGUF file for llama.cpp "
            "(metadata and tokenizer copied from the base's GGUF file):\n\n"
            "```\nllama-server -m model.gguf            # llama.cpp\n"
            "python -m llama_cpp.server --model model.gguf\n"
            "echo 'FROM ./model.gguf' > Modelfile && ollama create mine -f Modelfile\n```\n"
            f"Metrics of this iteration are in `{PROVENANCE_FILE}`.\n"
        )
    if adapter_only:
        return title + (
            f"A LoRA adapter for the base model `{config.model.name}` (loaded from `{base_path}` by the run; "
            "`adapter_config.json` names that path, so point it at your copy of the base):\n\n"
            "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
            f"base = AutoModelForCausalLM.from_pretrained({base_path!r})\n"
            "model = PeftModel.from_pretrained(base, THIS_DIR)\n"
            "tokenizer = AutoTokenizer.from_pretrained(THIS_DIR)\n```\n"
        )
    return title + (
        f"Base model `{config.model.name}` with the run's adapter merged in; loads with plain transformers:\n\n"
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "model = AutoModelForCausalLM.from_pretrained(THIS_DIR)\n"
        "tokenizer = AutoTokenizer.from_pretrained(THIS_DIR)\n```\n"
        f"Metrics of this iteration are in `{PROVENANCE_FILE}`.\n"
    )


def push_folder(folder: Path, repo: str) -> str:
    """Upload `folder` to the hub model repo `repo` (created if missing); return the repo URL."""
    if _hub_offline():
        raise AutodidactError(f"--push-to-hub {repo}: HF_HUB_OFFLINE is set; unset it (and log in) to upload.")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model",
                          commit_message="Upload model exported by autodidact")
    except Exception as exc:  # network, auth and name errors come as many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AutodidactError(f"--push-to-hub {repo} failed ({first}); the export is kept at {folder}.") from None
    return str(url)


def export_run(
    run_dir: Path,
    out: Path,
    iteration: str = "best",
    adapter_only: bool = False,
    push_to_hub: str | None = None,
    dtype: str | None = None,
    out_format: str = "hf",
) -> Path:
    """Write one iteration of a run as a standard Hugging Face model directory (or a GGUF file in it) at `out`.

    Args:
        run_dir: the run directory (config.yaml, run.sqlite, checkpoints/).
        out: a new (or empty) directory; written under a temporary name and renamed.
        iteration: "best", "last" or an iteration number.
        adapter_only: write the PEFT adapter instead of merged weights.
        push_to_hub: also upload `out` to this hub repo ("user/name").
        dtype: weights dtype of a merged export; default the run's model.dtype, or if 'auto' float32
            (float16 for GGUF, llama.cpp's usual type).
        out_format: 'hf' (safetensors and tokenizer files) or 'gguf' (`model.gguf`, merged; the base must
            have come from a GGUF file).

    Returns:
        `out`.

    Raises:
        AutodidactError: not a run directory, no checkpoint for the iteration (or the best is the
            base model), `out` not empty, a bad dtype or format, a base not loaded from a GGUF file
            (for 'gguf'), or the hub upload is impossible or failed.
    """
    run_dir, out = Path(run_dir), Path(out)
    if out_format not in FORMATS:
        raise AutodidactError(f"--format '{out_format}': choose one of {', '.join(FORMATS)}.")
    if out_format == "gguf" and adapter_only:
        raise AutodidactError("--format gguf writes merged weights; drop --adapter-only (or use --format hf).")
    _check_out(out)
    if push_to_hub and _hub_offline():  # before the work, not after
        raise AutodidactError(f"--push-to-hub {push_to_hub}: HF_HUB_OFFLINE is set; unset it (and log in) to upload.")
    config, store = open_run(run_dir)
    with store:
        number, checkpoint = pick_checkpoint(run_dir, store, str(iteration))
        metrics = _metrics(store, number)
        best = store.get_meta("best_iteration")
    dtype = dtype or (config.model.dtype if config.model.dtype != "auto" else
                      ("float16" if out_format == "gguf" else "float32"))
    if dtype not in DTYPES:
        raise AutodidactError(f"--dtype '{dtype}': choose one of {', '.join(DTYPES)}.")
    if out_format == "gguf":
        source_gguf(config.model.name)  # before the work: a base not from a GGUF file cannot be written as one

    provenance = {
        "run": config.name,
        "run_dir": str(run_dir.resolve()),
        "iteration": number,
        "best_iteration": None if best is None else int(best),  # chat calls it "improved" only if equal
        "checkpoint": str(checkpoint.resolve()),
        "kind": "adapter" if adapter_only else ("merged" if (checkpoint / "adapter_config.json").is_file() else "full"),
        "dtype": None if adapter_only else dtype,
        "format": out_format,
        "base_model": config.model.name,
        "metrics": metrics,
    }
    try:
        _write_export(config, checkpoint, out, provenance, adapter_only)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile
        raise file_error(exc, OTHER_OUT, out) from None
    if push_to_hub:
        push_folder(out, push_to_hub)
    return out


def _write_export(
    config: RunConfig, checkpoint: Path, out: Path, provenance: dict[str, Any], adapter_only: bool
) -> None:
    """Write the export under a temporary name beside `out`, then rename it; nothing is left behind on failure.

    Raises:
        OSError: writing failed (a library's wrapped I/O error is raised as the OSError it was).
    """
    created = next((p for p in reversed([out.parent, *out.parent.parents]) if not p.exists()), None)
    tmp = out.with_name(f".{out.name}.export-tmp")
    number, dtype, out_format = provenance["iteration"], provenance["dtype"], provenance["format"]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if adapter_only:
            base_path = _write_adapter(config, checkpoint, tmp)
        elif out_format == "gguf":
            base_path = _write_gguf(config, checkpoint, tmp, dtype)
        else:
            base_path = _write_merged(config, checkpoint, tmp, dtype)
        provenance = provenance | {"base_model_path": base_path}
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(config, number, adapter_only, base_path, out_format), encoding="utf-8")
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        wrapped = _as_os_error(exc)
        if wrapped is exc:
            raise
        raise wrapped from None


def _as_os_error(exc: BaseException) -> BaseException:
    """A library's wrapped I/O failure (safetensors: 'I/O error: File too large (os error 27)') as its OSError."""
    found = None if isinstance(exc, OSError) else re.search(r"\(os error (\d+)\)", str(exc))
    return exc if found is None else OSError(int(found[1]), os.strerror(int(found[1])))
