"""`autodidact documents FOLDER`: the model learns a folder of documents (the original AutoDidact workflow).

The run's config is `DOCUMENTS_DEFAULTS` (the one place its numbers are tuned), with the folder and the
command's options put in, then any `--set` over it: the same overrides `autodidact run` takes, so
`--set tasks.sources.0.chunk_chars=800` reaches the documents source.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from autodidact.config import RunConfig, parse_overrides, validate_config
from autodidact.config.overrides import merge_overrides
from autodidact.errors import AutodidactError
from autodidact.tasks.documents.reading import DocumentsRead, read_documents

# Everything but the folder, the source's name, the run's folder, seed and iterations (set by the command).
# examples/apollo13/config.yaml holds the same settings (tests/apps/test_documents_command.py checks it).
DOCUMENTS_DEFAULTS: dict[str, Any] = {
    "tasks": {
        "names": [],
        "sources": [
            {
                "type": "documents",
                "chunk_chars": 600,  # short search results: faster to read and train on, easier to answer from
                "overlap_chars": 100,
                "questions": "answer_first",  # answers are spans of the chunk; the model writes the questions
                "questions_per_chunk": 2,
                "wordings": 3,  # the rule-written question and up to 2 of the model's
                "heldout_ratio": 0.2,
                "search": True,
                "search_first": True,  # a small model never calls the tool on its own: every answer starts from it
                "search_top_k": 1,
                "max_turns": 1,
            }
        ],
        "train_size": 1000,
        "heldout_size": 40,
        "prompts_per_iteration": 64,
    },
    "generation": {"samples_per_prompt": 4, "temperature": 0.8, "max_new_tokens": 20},
    "judge": {"method": "verifier"},  # graded against the span from the user's document
    "selection": {"strategy": "top_k", "top_k": 1, "min_score": 5},  # only answers that passed train
    "training": {"method": "sft", "finetune": "lora", "learning_rate": 0.001, "epochs": 1, "max_length": 512},
    "evaluation": {"max_new_tokens": 20},
    "stopping": {"max_iterations": 3, "patience": 3},
}


def source_name(folder: Path) -> str:
    """A task name from a folder's name: letters, digits, '-' and '_' ('My Notes (2024)' -> 'My_Notes_2024')."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(folder).expanduser().resolve().name).strip("_-")
    return name or "documents"


def documents_config(
    folder: Path,
    *,
    name: str | None = None,
    output_dir: str | Path = "runs",
    iterations: int = 3,
    seed: int = 0,
    overrides: list[str] | None = None,
) -> RunConfig:
    """The run config of `autodidact documents`: `DOCUMENTS_DEFAULTS`, the options, then `overrides` (--set).

    Raises:
        AutodidactError: an override or the resulting config is invalid (one line naming the key).
    """
    data = copy.deepcopy(DOCUMENTS_DEFAULTS)
    # An absolute path: the saved config still finds the folder when the run is resumed from elsewhere.
    path = str(Path(folder).expanduser().resolve())
    data["tasks"]["sources"][0].update(name=name or source_name(folder), path=path)
    data.update(output_dir=str(output_dir), seed=seed)
    data["stopping"].update(max_iterations=iterations, patience=iterations)  # run every iteration asked for
    extra = parse_overrides(overrides or [])
    if extra:
        data = merge_overrides(data, extra, defaults=data)
    return validate_config(data)


def check_folder(config: RunConfig) -> DocumentsRead:
    """Read the documents source's folder before anything is written, so bad input fails in one line.

    Raises:
        AutodidactError: the folder does not exist or holds no readable document (counts of what was skipped).
    """
    sources = [s for s in config.tasks.sources if s.type == "documents"]
    if not sources:
        raise AutodidactError("documents: --set removed the documents source; keep tasks.sources.0 a documents source.")
    return read_documents(sources[0].path, sources[0].max_file_mb)
