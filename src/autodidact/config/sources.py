"""Where prompts come from: built-in tasks and sources (files, self-written prompts, documents, logs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from autodidact.config.base import Section
from autodidact.config.registry import BUILTIN_TASKS
from autodidact.errors import unknown_name


class SourceBase(Section):
    name: str = Field(..., min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    weight: float = Field(
        1.0, gt=0.0, le=1000.0, description="Share of tasks.prompts_per_iteration drawn from this source each iteration (x weight)."
    )
    heldout_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of items held out for evaluation.")
    max_bad_rows: int = Field(
        10, ge=0, le=10**9, description="Malformed rows skipped (and counted) before the source is refused with an error."
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError("use letters, digits, '-' and '_' only")
        return name


class FileSourceConfig(SourceBase):
    type: Literal["file"] = "file"
    path: str = Field(
        ..., description="A .jsonl, .csv or .parquet file, a `datasets` directory (save_to_disk), or a hub dataset name (online only)."
    )
    split: str = Field("train", description="With a `datasets` directory or hub name: the split to read.")
    prompt_field: str = Field("prompt", description="Column with the prompt text (ignored when messages_field is set).")
    messages_field: str | None = Field(None, description="Column with chat messages [{role, content}, ...] instead of a prompt.")
    reference_field: str | None = Field("reference", description="Column with the reference answer (optional per row).")
    verifier_field: str | None = Field(None, description="Column naming each row's verifier (overrides `verifier`).")
    verifier: str = Field(
        "exact",
        description="Verifier for rows with a reference: exact, number, regex, json_keys, python_tests, or "
        "a dotted path 'pkg.mod:fn'. Rows without a reference are judged but not verified.",
    )
    id_field: str | None = Field(None, description="Column with a stable row id (default: the row number).")
    heldout_column: str | None = Field(
        None, description="Column whose value `heldout_value` marks held-out rows (instead of heldout_ratio)."
    )
    heldout_value: str = Field("heldout", description="With heldout_column: the value that marks a held-out row.")


class SelfInstructSourceConfig(SourceBase):
    type: Literal["self_instruct"] = "self_instruct"
    name: str = Field("self_instruct", min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    seeds: list[str] = Field(default_factory=list, description="Seed prompts the model imitates.")
    seeds_path: str | None = Field(None, description="A .txt (one prompt per line) or .jsonl file ('prompt') of seed prompts.")
    per_iteration: int = Field(32, ge=1, le=100_000, description="New prompts the model writes each iteration.")
    max_pool: int = Field(500, ge=1, le=10**7, description="The pool of written prompts stops growing at this size.")
    examples_per_request: int = Field(3, ge=1, le=100, description="Seed or pool prompts shown in each writing request.")
    dedup_similarity: float = Field(
        0.9, gt=0.0, le=1.0, description="A written prompt this cosine-similar to one in the pool or held out is dropped."
    )


class DocumentsSourceConfig(SourceBase):
    type: Literal["documents"] = "documents"
    name: str = Field("documents", min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    path: str = Field(..., description="A folder of .md, .txt and .html files (or one such file).")
    max_file_mb: float = Field(
        20.0, gt=0.0, le=10**5, description="A document larger than this is skipped (counted and named in the log)."
    )
    chunk_chars: int = Field(1200, ge=100, le=10**7, description="Chunk length in characters.")
    overlap_chars: int = Field(200, ge=0, le=10**7, description="Characters shared by consecutive chunks.")
    max_chunks: int | None = Field(None, ge=1, le=10**7, description="Use at most this many chunks (evenly spread).")
    questions: Literal["answer_first", "model"] = Field(
        "answer_first",
        description="'answer_first': answers are spans of the chunk (numbers with units, dates, names) and the model "
        "writes questions for them; 'model': the model writes question and answer both (the original workflow).",
    )
    questions_per_chunk: int = Field(
        2, ge=1, le=100, description="Facts (answer_first) or question/answer pairs (model) taken per chunk."
    )
    wordings: int = Field(
        3,
        ge=2,
        le=20,
        description="answer_first: wordings the model writes per fact; of a training chunk's fact one wording is held "
        "out and asked closed-book (the recall set, split heldout_paraphrase), the others train.",
    )
    max_facts: int | None = Field(
        None, ge=1, le=10**7, description="answer_first: use at most this many facts (evenly spread over the chunks)."
    )
    grading: Literal["span", "model"] = Field(
        "span",
        description="'span': an answer passes when it states the reference span (normalised match, no model); "
        "'model': the model is asked whether the answer states the reference's fact.",
    )
    qa_prompt: str | None = Field(
        None, description="Prompt that asks for question/answer pairs; must contain {chunk} and {n} (default: built in)."
    )
    search: bool = Field(True, description="Answer with a search(query) tool over the chunks, not from memory.")
    search_top_k: int = Field(2, ge=1, le=100, description="Chunks a search call returns.")
    max_turns: int = Field(2, ge=1, le=100, description="Search calls allowed before the answer must be given.")
    search_first: bool = Field(
        False,
        description="Run the question itself as the first search, so every answer starts from the results (for "
        "small models that never call the tool on their own; training then shows them what a call looks like).",
    )


class LogsSourceConfig(SourceBase):
    type: Literal["logs"] = "logs"
    name: str = Field("logs", min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    path: str = Field(..., description="Chat JSONL: one conversation per line, {\"messages\": [{role, content}, ...]}.")
    include_deployed: bool = Field(
        True, description="Add the deployed (logged) assistant reply as one extra candidate sample per prompt."
    )


SourceConfig = Annotated[
    FileSourceConfig | SelfInstructSourceConfig | DocumentsSourceConfig | LogsSourceConfig, Field(discriminator="type")
]
# The union's tags: pydantic puts the entry's type in an error's location (tasks.sources.0.file.path).
SOURCE_TYPES = tuple(
    cls.model_fields["type"].default
    for cls in (FileSourceConfig, SelfInstructSourceConfig, DocumentsSourceConfig, LogsSourceConfig)
)


class TasksConfig(Section):
    names: list[str] = Field(
        default_factory=lambda: ["arithmetic", "instructions"],
        description="Built-in tasks that provide prompts and held-out verifiers (may be empty when sources are given).",
    )
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="More task sources, each {type: file | self_instruct | documents | logs, name, ...}; see docs/TASKS.md.",
    )
    train_size: int = Field(200, ge=1, le=10**9, description="Training prompts drawn per built-in task (the pool).")
    heldout_size: int = Field(48, ge=1, le=10**6, description="Held-out prompts per built-in task, never trained on.")
    paraphrase_heldout_size: int | None = Field(
        None,
        ge=0,
        le=10**6,
        description="Prompts per built-in task in a second held-out set, worded in phrasings the training prompts "
        "never use (problems disjoint from train and held-out), graded every iteration as paraphrase_pass_rate "
        "so a gain can be told apart from learning the prompt templates. Unset: tasks.heldout_size; 0 turns it "
        "off. Tasks from sources have none.",
    )
    prompts_per_iteration: int = Field(
        24, ge=1, le=10**6, description="Training prompts per task used in each iteration (times a source's weight)."
    )
    min_heldout: int = Field(
        4,
        ge=0,
        le=1_000_000,
        description="A new run stops before any work when a task or source holds out fewer prompts than this: "
        "too few to measure it. 0 lets a task with no held-out prompts train unmeasured.",
    )

    @field_validator("names")
    @classmethod
    def _known_tasks(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in BUILTIN_TASKS:
                raise unknown_name("task", name, BUILTIN_TASKS)  # propagates: validate_config prefixes "config: "
        return names

    @model_validator(mode="after")
    def _some_unique_tasks(self) -> TasksConfig:
        all_names = self.names + [s.name for s in self.sources]
        if not all_names:
            raise ValueError("give at least one task: tasks.names or tasks.sources")
        duplicated = sorted({n for n in all_names if all_names.count(n) > 1})
        if duplicated:
            raise ValueError(f"task names must be unique; repeated: {', '.join(duplicated)}")
        return self

    def paraphrase_size(self) -> int:
        """Prompts per built-in task in the paraphrased held-out set (0 = none)."""
        return self.heldout_size if self.paraphrase_heldout_size is None else self.paraphrase_heldout_size

    def all_names(self) -> list[str]:
        """Every task of the run: built-in names, then sources, in config order."""
        return self.names + [s.name for s in self.sources]

    def weight(self, name: str) -> float:
        """A task's weight in each iteration's draw (1.0 for built-in tasks)."""
        return next((s.weight for s in self.sources if s.name == name), 1.0)


__all__ = [
    "DocumentsSourceConfig",
    "FileSourceConfig",
    "LogsSourceConfig",
    "SOURCE_TYPES",
    "SelfInstructSourceConfig",
    "SourceBase",
    "SourceConfig",
    "TasksConfig",
]
