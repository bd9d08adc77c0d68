"""One typed, validated `RunConfig`: a YAML file plus `--set a.b=c` overrides.

Every field carries help text (it becomes the comment in `autodidact init`'s
example file and in the configuration reference). Validation errors become a
one-line `AutodidactError` naming the field and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autodidact.errors import AutodidactError, unknown_name


def _env_var_name(name: str | None, field: str) -> str | None:
    if name is not None and not (name.isascii() and name.isidentifier()):
        # AutodidactError rather than ValueError: the value (perhaps a pasted key) must not be echoed.
        raise AutodidactError(f"{field}: give the name of an environment variable (e.g. OPENAI_API_KEY), not the key itself.")
    return name


class Section(BaseModel):
    # Unknown keys are errors, not silently ignored: a typo must not run a
    # different experiment than the one the user meant.
    # inf and nan pass a one-sided bound (epochs: .inf is > 0), so they are refused everywhere.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ServerConfig(Section):
    url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    model_name: str | None = Field(None, description="The model name the server serves (default: its first model).")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (never the key itself)."
    )
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0.0, description="Seconds per request attempt.")
    max_retries: int = Field(
        3, ge=0, le=20, description="Retries (exponential backoff) after a connection error, timeout, 429 or 5xx."
    )
    reload: Literal["none", "lora", "merged"] = Field(
        "none",
        description="After each iteration's training: 'lora' loads the new adapter into the server at run time "
        "(vLLM's /v1/load_lora_adapter, needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True there); 'merged' exports "
        "merged weights (and a GGUF file for llama.cpp) and runs model.server.restart_command; 'none' keeps "
        "the server's weights (the server then generates with the base model).",
    )
    restart_command: str | None = Field(
        None,
        description="With reload 'merged': a shell command that restarts the server on the new weights; "
        "{checkpoint} and {gguf} are replaced by their paths. The loop waits until the server answers again.",
    )

    @field_validator("api_key_env")
    @classmethod
    def _env_name_only(cls, name: str | None) -> str | None:
        return _env_var_name(name, "model.server.api_key_env")


class VLLMConfig(Section):
    gpu_memory_utilization: float = Field(0.5, gt=0.0, le=1.0, description="Share of GPU memory vLLM may take.")
    tensor_parallel_size: int = Field(
        1, ge=1, le=64, description="GPUs one vLLM engine spans (tensor parallelism), for models that do not fit one GPU."
    )
    max_model_len: int | None = Field(None, ge=16, description="Longest sequence vLLM plans for (default: the model's).")
    max_lora_rank: int = Field(64, ge=1, description="Largest LoRA rank vLLM reserves room for (>= training.lora_r).")
    sleep_during_training: bool = Field(
        True, description="Put vLLM to sleep (weights and KV cache off the GPU) while the trainer runs."
    )
    enforce_eager: bool = Field(False, description="No CUDA graphs: slower, but starts faster and uses less memory.")


class ModelConfig(Section):
    name: str = Field(
        "default",
        description="'default' (the bundled SmolLM2-135M-Instruct), a local Hugging Face directory, "
        "a .gguf file, or a hub id (needs network).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype. 'auto': bfloat16 where the CPU/GPU computes it natively, else float32."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' uses CUDA when available.")
    engine: Literal["transformers", "server", "vllm"] = Field(
        "transformers",
        description="Where the policy generates: 'transformers' in this process; 'server' an OpenAI-compatible "
        "server (model.server.url) that serves model.name's weights; 'vllm' vLLM in this process (GPU, the "
        "`vllm` extra). Training always runs here, on model.name's weights.",
    )
    server: ServerConfig = Field(
        default_factory=ServerConfig, description="With engine 'server': the server and how it gets new weights."
    )
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="With engine 'vllm': the engine's settings.")

    @model_validator(mode="after")
    def _server_needs_url(self) -> ModelConfig:
        if self.engine == "server" and not self.server.url:
            raise ValueError("model.engine 'server' needs model.server.url (e.g. http://127.0.0.1:8000/v1); set it")
        return self


class SourceBase(Section):
    name: str = Field(..., min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    weight: float = Field(
        1.0, gt=0.0, description="Share of tasks.prompts_per_iteration drawn from this source each iteration (x weight)."
    )
    heldout_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of items held out for evaluation.")
    max_bad_rows: int = Field(
        10, ge=0, description="Malformed rows skipped (and counted) before the source is refused with an error."
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
    per_iteration: int = Field(32, ge=1, description="New prompts the model writes each iteration.")
    max_pool: int = Field(500, ge=1, description="The pool of written prompts stops growing at this size.")
    examples_per_request: int = Field(3, ge=1, description="Seed or pool prompts shown in each writing request.")
    dedup_similarity: float = Field(
        0.9, gt=0.0, le=1.0, description="A written prompt this cosine-similar to one in the pool or held out is dropped."
    )


class DocumentsSourceConfig(SourceBase):
    type: Literal["documents"] = "documents"
    name: str = Field("documents", min_length=1, description="Task name (unique in the run); prefixes prompt ids.")
    path: str = Field(..., description="A folder of .md / .txt files (or one file).")
    chunk_chars: int = Field(1200, ge=100, description="Chunk length in characters.")
    overlap_chars: int = Field(200, ge=0, description="Characters shared by consecutive chunks.")
    max_chunks: int | None = Field(None, ge=1, description="Use at most this many chunks (evenly spread).")
    questions_per_chunk: int = Field(2, ge=1, description="Question/answer pairs the model writes per chunk.")
    qa_prompt: str | None = Field(
        None, description="Prompt that asks for question/answer pairs; must contain {chunk} and {n} (default: built in)."
    )
    search: bool = Field(True, description="Answer with a search(query) tool over the chunks, not from memory.")
    search_top_k: int = Field(2, ge=1, description="Chunks a search call returns.")
    max_turns: int = Field(2, ge=1, description="Search calls allowed before the answer must be given.")
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


class TasksConfig(Section):
    names: list[str] = Field(
        default_factory=lambda: ["arithmetic", "instructions"],
        description="Built-in tasks that provide prompts and held-out verifiers (may be empty when sources are given).",
    )
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="More task sources, each {type: file | self_instruct | documents | logs, name, ...}; see docs/TASKS.md.",
    )
    train_size: int = Field(200, ge=1, description="Training prompts drawn per built-in task (the pool).")
    heldout_size: int = Field(48, ge=1, description="Held-out prompts per built-in task, never trained on.")
    paraphrase_heldout_size: int | None = Field(
        None,
        ge=0,
        description="Prompts per built-in task in a second held-out set, worded in phrasings the training prompts "
        "never use (problems disjoint from train and held-out), graded every iteration as paraphrase_pass_rate "
        "so a gain can be told apart from learning the prompt templates. Unset: tasks.heldout_size; 0 turns it "
        "off. Tasks from sources have none.",
    )
    prompts_per_iteration: int = Field(
        24, ge=1, description="Training prompts per task used in each iteration (times a source's weight)."
    )

    @field_validator("names")
    @classmethod
    def _known_tasks(cls, names: list[str]) -> list[str]:
        from autodidact.tasks import TASKS

        for name in names:
            if name not in TASKS:
                raise unknown_name("task", name, TASKS)
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


class GenerationConfig(Section):
    samples_per_prompt: int = Field(4, ge=1, le=64, description="Samples generated per training prompt.")
    temperature: float = Field(0.8, ge=0.0, le=5.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    max_new_tokens: int = Field(64, ge=1, le=8192, description="Longest response, in tokens.")
    batch_size: int = Field(256, ge=1, description="Sequences (prompts x samples) decoded together; larger is faster on CPU up to memory.")
    temperature_schedule: list[float] | None = Field(
        None,
        description="Temperature per training iteration (entry i-1 for iteration i, the last entry repeated "
        "afterwards), e.g. [0.7, 0.9, 1.1] to counter mode collapse; replaces temperature when set.",
    )

    @field_validator("temperature_schedule")
    @classmethod
    def _schedule_in_range(cls, schedule: list[float] | None) -> list[float] | None:
        if schedule is not None and (not schedule or any(not 0.0 <= t <= 5.0 for t in schedule)):
            raise ValueError("temperature_schedule needs at least one temperature, each between 0 and 5")
        return schedule

    def temperature_at(self, iteration: int) -> float:
        """The sampling temperature of a training iteration (1, 2, ...)."""
        if not self.temperature_schedule:
            return self.temperature
        return self.temperature_schedule[min(iteration, len(self.temperature_schedule)) - 1]


class JudgeConfig(Section):
    method: str = Field(
        "direct",
        description="How the model evaluates its own samples: 'direct' (0-10 score), 'rubric' "
        "(chain-of-thought over named criteria, then a score), 'pairwise' (picks the better of two samples "
        "of a prompt, both orders; scores by Bradley-Terry or win rate), 'contrastive' (explains why one "
        "sample beats the other, then picks), 'self_consistency' (agreement with the majority answer "
        "among a prompt's samples), 'ensemble' (several member judges or personas, combined), or "
        "'verifier' (the task's verifier; a supervised upper bound, not self-improvement); 'program': a Python "
        "verifier function grades (see judge.program).",
    )
    mode: Literal["logprobs", "generate"] = Field(
        "logprobs",
        description="'logprobs': the score is the probability-weighted mean over the score tokens "
        "(one forward pass); 'generate': the score is parsed from generated text (for servers without "
        "log-probabilities).",
    )
    criteria: list[str] = Field(
        default_factory=lambda: ["follows the instruction", "correct", "concise"],
        description="Named criteria the rubric judge reasons through.",
    )
    reasoning_tokens: int = Field(
        96, ge=1, description="Token budget for the rubric judge's reasoning and the contrastive judge's explanation."
    )
    batch_size: int = Field(16, ge=1, description="Judge prompts scored together in one forward pass.")
    min_score_mass: float = Field(
        1e-4,
        ge=0.0,
        lt=1.0,
        description="With mode 'logprobs': a judgment is failed (None) when the score tokens get less "
        "probability than this in total.",
    )
    pairwise_schedule: Literal["round_robin", "cycle", "random_k"] = Field(
        "round_robin",
        description="Pairwise/contrastive: which pairs of a prompt's samples are compared (each in both "
        "orders). 'round_robin': every pair, n(n-1)/2; 'cycle': each sample vs the next, n pairs; "
        "'random_k': each sample vs pairwise_k random others.",
    )
    pairwise_k: int = Field(2, ge=1, description="Pairwise/contrastive with schedule 'random_k': opponents per sample.")
    pairwise_aggregate: Literal["bradley_terry", "win_rate"] = Field(
        "bradley_terry",
        description="Pairwise/contrastive: per-sample score from the results (ties count half). "
        "'bradley_terry': 10 x P(beating an opponent of the group's average fitted strength); "
        "'win_rate': 10 x share of pairs won.",
    )
    extractor: str = Field(
        "last_number",
        description="Self-consistency: how the final answer is read from a sample: 'last_number', 'boxed' "
        "(\\boxed{...}), 'final_line', 'answer_tag' (after 'Answer:'), or a function 'package.module:function' "
        "(text -> answer or None).",
    )
    consistency_score: Literal["majority", "share"] = Field(
        "majority",
        description="Self-consistency: 'majority': 10 for a sample whose answer is the majority, else 0; "
        "'share': 10 x the share of the prompt's answered samples that gave the same answer, so a "
        "selection.min_score keeps only answers the model gives confidently (e.g. 5: at least half agree).",
    )
    tasks: dict[str, JudgeConfig] = Field(
        default_factory=dict,
        description="A judge per task: task name -> a judge section of its own (fields it leaves out take their "
        "defaults; model as for ensemble members) that judges that task's samples; other tasks use this section. "
        "E.g. {arithmetic: {method: self_consistency, consistency_score: share}}: votes where answers can be "
        "extracted, this judge elsewhere.",
    )
    members: list[JudgeConfig] = Field(
        default_factory=list,
        description="Ensemble: the member judges, each a judge section of its own (fields it leaves out "
        "take their defaults, except model: a member without one runs on the ensemble's judge model), e.g. "
        "[{method: direct}, {method: rubric, criteria: [correct], model: default}].",
    )
    personas: list[str] = Field(
        default_factory=list,
        description="Ensemble: each persona adds a direct-judge member whose prompt starts with it "
        "(e.g. 'You are a meticulous math teacher.'); uses this section's mode and min_score_mass.",
    )
    combine: Literal["mean", "min", "majority"] = Field(
        "mean",
        description="Ensemble: how member scores combine per sample (failed members skipped): 'mean', "
        "'min', or 'majority' (10 if more members score above 5 than below, 0 if fewer, 5 on a tie).",
    )

    program: str | None = Field(
        None,
        description="With method 'program': the verifier, a built-in ('exact_match', 'number_match', 'regex', "
        "'json_keys', 'python_tests') or a function 'package.module:function' taking (prompt, response, "
        "reference, **program_args) and returning bool, float in [0, 1] or None; score = 10 x value.",
    )
    program_args: dict[str, Any] = Field(
        default_factory=dict,
        description="With method 'program': keyword arguments for every call, e.g. {pattern: '^[0-9]+$'} for "
        "regex, {keys: [name, age]} for json_keys, {timeout: 5, memory_mb: 512} for python_tests.",
    )
    program_timeout: float = Field(
        10.0,
        gt=0.0,
        description="With method 'program': seconds one verifier call may take; it is then killed and "
        "that judgment fails.",
    )
    program_memory_mb: int = Field(
        2048, ge=0, description="With method 'program': address-space limit of each verifier process in MiB (0 = none)."
    )
    program_network: bool = Field(
        False,
        description="With method 'program': let verifier processes use the network. Off: they run in an empty "
        "network namespace where the platform allows it (Linux `unshare --net`).",
    )
    program_workers: int = Field(
        1, ge=1, le=64, description="With method 'program': verifier processes run in parallel."
    )
    model: str | None = Field(
        None,
        description="Who judges. null: the policy judges itself (shared weights). 'default', a local "
        "directory, a .gguf file or a hub id: a separate copy loaded next to the policy and never trained. "
        "An http(s):// URL: an OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI), "
        "e.g. http://localhost:8000/v1.",
    )
    model_name: str | None = Field(None, description="With a server URL in judge.model: the model name it serves.")
    tokenizer: str | None = Field(
        None,
        description="With a server URL: a local directory or hub id whose chat template renders the judge "
        "prompts, sent to the server's /completions endpoint (exact answer prefixes, as with a local judge). "
        "null: the server renders the messages (/chat/completions; see docs on answer prefixes).",
    )
    api_key_env: str | None = Field(
        None,
        description="With a server URL: the NAME of the environment variable holding the API key "
        "(e.g. OPENAI_API_KEY). The key itself is never written to the config or the run. null: no key.",
    )
    server_concurrency: int = Field(8, ge=1, le=256, description="With a server URL: requests in flight at once.")
    server_timeout: float = Field(
        60.0, gt=0.0, description="With a server URL: seconds before one request attempt times out."
    )
    server_max_retries: int = Field(
        2,
        ge=0,
        le=20,
        description="With a server URL: retries, with exponential backoff, after a connection error, timeout, "
        "429 or 5xx; after the last one that judgment fails.",
    )
    server_top_logprobs: int = Field(
        20,
        ge=1,
        le=20,
        description="With a server URL and mode 'logprobs': alternatives returned for the score token "
        "(vLLM and /chat/completions allow 20, OpenAI's hosted /completions 5); a score outside them gets "
        "probability 0.",
    )
    max_failed_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="If more than this share of an iteration's training judgments fail (score None), the run "
        "stops with an error naming the reasons, instead of training on what is left.",
    )

    @field_validator("method")
    @classmethod
    def _known_judge(cls, method: str) -> str:
        from autodidact.judges import JUDGES

        if method not in JUDGES:
            raise unknown_name("judge", method, JUDGES)
        return method

    @field_validator("program")
    @classmethod
    def _program_resolves(cls, program: str | None) -> str | None:
        if program is not None:
            from autodidact.verifiers import load_program

            load_program(program)  # ValueError naming the problem: unknown built-in, import error...
        return program

    @field_validator("api_key_env")
    @classmethod
    def _env_name_only(cls, name: str | None) -> str | None:
        return _env_var_name(name, "judge.api_key_env")

    @model_validator(mode="after")
    def _judge_source_consistent(self) -> JudgeConfig:
        if self.method == "program":
            if self.program is None:
                raise ValueError(
                    "method 'program' needs judge.program: a built-in (exact_match, number_match, regex, json_keys, "
                    "python_tests) or 'package.module:function'"
                )
            from autodidact.judges.programmatic import check_program

            check_program(self.program, self.program_args, self.program_timeout)
        server = self.model is not None and self.model.startswith(("http://", "https://"))
        if server and not self.model_name:
            raise ValueError("judge.model is a server URL; set judge.model_name to the model name it serves")
        if not server:
            for name in ("model_name", "tokenizer", "api_key_env"):
                if getattr(self, name) is not None:
                    raise ValueError(f"judge.{name} applies only when judge.model is a server URL (http://...)")
        return self

    @field_validator("extractor")
    @classmethod
    def _known_extractor(cls, extractor: str) -> str:
        from autodidact.judges.consistency import EXTRACTORS

        module, sep, attr = extractor.partition(":")
        if extractor not in EXTRACTORS and not (sep and module.strip() and attr.strip()):
            known = unknown_name("extractor", extractor, EXTRACTORS)
            raise ValueError(f"{known} Or give a function as 'package.module:function'")
        return extractor

    @model_validator(mode="after")
    def _ensemble_has_members(self) -> JudgeConfig:
        if self.method == "ensemble" and not self.members and not self.personas:
            raise ValueError("method 'ensemble' needs at least one entry in members or personas")
        for name, section in self.tasks.items():
            if section.tasks:  # one level: a task's judge is already the most specific one
                raise ValueError(f"judge.tasks.{name} has tasks of its own; give each task one judge section")
        nested = [(f"members[{i}]", m) for i, m in enumerate(self.members)]
        nested += [(f"tasks.{name}", section) for name, section in self.tasks.items()]
        default_share = type(self).model_fields["max_failed_share"].default
        for field, section in nested:
            # Compared with the default, not model_fields_set: a run's saved config.yaml writes every field,
            # and resuming it must not be refused. The loop reads the combined judgments only.
            if section.max_failed_share != default_share:
                raise ValueError(
                    f"judge.{field}.max_failed_share is not used: the failure policy reads the run's judgments "
                    "together; set judge.max_failed_share instead"
                )
        return self


class SelectionConfig(Section):
    strategy: Literal["top_k", "threshold"] = Field(
        "top_k", description="'top_k': the best k samples per prompt; 'threshold': every sample scoring >= min_score."
    )
    top_k: int = Field(1, ge=1, description="Samples kept per prompt with strategy 'top_k'.")
    min_score: float | None = Field(
        None, ge=0.0, le=10.0, description="Absolute score floor (0-10); applies to both strategies when set."
    )
    min_margin: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="With training.method 'dpo' (which pairs each prompt's best sample against its worst, "
        "instead of using strategy/top_k/min_score): the smallest score gap that makes a pair. Ties never do.",
    )
    length_band: float | None = Field(
        None,
        ge=0.0,
        le=10.0,
        description="Length control against a judge that favours long answers (as Meta-Rewarding does): among "
        "a prompt's samples scoring within this many points of its best, the shortest are kept (top_k) or "
        "chosen (DPO). Off when unset.",
    )
    dedup_similarity: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Near-duplicate removal before training: a selected response whose embedding cosine "
        "similarity to a higher-scored selected response is at or above this is dropped (e.g. 0.95). Off when unset.",
    )
    revise: bool = Field(
        False,
        description="Critique and revise, with judge.method 'contrastive' and training.method 'sft': for every "
        "pair the judge decided, the policy rewrites the losing response using the judge's explanation (greedy, "
        "up to generation.max_new_tokens); each non-empty rewrite is added to the selection as an extra SFT example.",
    )


class TrainingConfig(Section):
    method: Literal["sft", "dpo", "grpo"] = Field(
        "sft",
        description="'sft': supervised fine-tuning on the selected samples; 'dpo': direct preference "
        "optimization on best-vs-worst pairs, against the previous iteration's model as reference; 'grpo': "
        "online RL (TRL GRPOTrainer) over the iteration's prompts, the judge's score as the reward.",
    )
    finetune: Literal["lora", "full"] = Field("lora", description="LoRA adapters (PEFT) or full fine-tuning.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules that get LoRA adapters ('all-linear' or a list of names)."
    )
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0, description="Peak learning rate.")
    epochs: float = Field(1.0, gt=0.0, description="Passes over each iteration's selected samples.")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step (per device).")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches accumulated per optimizer step.")
    max_length: int = Field(512, ge=16, description="Longest training sequence (prompt + response), in tokens.")
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute activations in the backward pass: less memory, ~1.5x the compute. "
        "Turn on for models whose activations do not fit in memory.",
    )
    dpo_beta: float = Field(
        0.1,
        gt=0.0,
        description="With method 'dpo': how strongly the policy is held to the reference model (higher = closer).",
    )
    on_fault: Literal["retry", "stop"] = Field(
        "retry",
        description="After a training fault (a non-finite loss or weight, or a held-out collapse past "
        "stopping.max_metric_drop) the iteration is rolled back to the previous checkpoint; then 'retry' "
        "trains it again with a lower learning rate, 'stop' ends the run.",
    )
    max_retries: int = Field(2, ge=0, description="With on_fault 'retry': retries per iteration before the run stops.")
    retry_lr_factor: float = Field(
        0.5, gt=0.0, lt=1.0, description="With on_fault 'retry': each retry multiplies the learning rate by this."
    )
    num_processes: int = Field(
        1,
        ge=1,
        description="Training processes (data parallel through `accelerate launch`): 1 trains in this process; "
        "more run DDP (gloo on CPU, NCCL on GPUs), with training.batch_size per process.",
    )
    accelerate_config: str | None = Field(
        None,
        description="An `accelerate` config file for multi-process training (DeepSpeed ZeRO or FSDP; see "
        "configs/accelerate/). Default: plain DDP with training.num_processes processes.",
    )


class EvaluationConfig(Section):
    max_new_tokens: int = Field(64, ge=1, description="Longest held-out response, in tokens (greedy decoding).")
    judge_heldout: bool = Field(True, description="Also score held-out responses with the self-judge.")


class StoppingConfig(Section):
    max_iterations: int = Field(3, ge=1, le=1000, description="Training iterations (iteration 0 is the base model).")
    patience: int = Field(2, ge=1, description="Stop after this many iterations without enough improvement.")
    min_delta: float = Field(
        0.01, ge=0.0, description="Smallest gain in the held-out metric that counts as improvement."
    )
    max_metric_drop: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="A training fault when one iteration drops the held-out metric by more than this (0-1 "
        "scale): the iteration is rolled back (see training.on_fault). Off when unset.",
    )


class RewardHackingConfig(Section):
    window: int = Field(
        2, ge=1, description="Alert when the judge score rose while the held-out metric was flat or fell for this many iterations in a row."
    )
    tolerance: float = Field(
        0.0, ge=0.0, description="A held-out change at or below this counts as flat (0-1 scale of the held-out metric)."
    )
    stop: bool = Field(False, description="Stop the run when the alert is raised.")
    reference_judge: str | None = Field(
        None,
        description="A fixed judge for tasks without a verifier: a model ('default', a path, a .gguf) or an "
        "OpenAI-compatible server URL (with judge.model_name / judge.api_key_env). It scores the held-out "
        "answers every iteration and is never trained; its score stands in for the pass rate.",
    )


class BiasConfig(Section):
    min_position_consistency: float = Field(
        0.6, ge=0.0, le=1.0, description="Alert when pairwise judging agrees with itself across both orders less often than this."
    )
    max_length_correlation: float = Field(
        0.5, ge=0.0, le=1.0, description="Alert when |Spearman correlation| of judge score and response length exceeds this."
    )
    max_disagreement: float = Field(
        3.0, ge=0.0, le=10.0, description="Alert when ensemble members' scores of one sample differ by more than this on average."
    )
    stop: bool = Field(False, description="Stop the run when a bias alert is raised.")


class DiversityConfig(Section):
    prompts: int = Field(
        16, ge=0, description="Held-out prompts sampled every iteration to measure diversity (0 turns the probe off)."
    )
    samples: int = Field(4, ge=2, le=64, description="Samples per probe prompt, at generation.temperature.")
    embedder: str = Field(
        "default",
        description="Sentence embedder for similarity: 'default' (the bundled all-MiniLM-L6-v2), a "
        "sentence-transformers model directory, or 'none' to skip embedding similarity.",
    )
    max_drop: float = Field(
        0.3, ge=0.0, le=1.0, description="Alert when a diversity measure falls by more than this share of its iteration-0 value."
    )
    stop: bool = Field(False, description="Stop the run when the mode-collapse alert is raised.")


class ReturnsConfig(Section):
    window: int = Field(3, ge=2, description="Iterations whose gains make the trend.")
    stop: bool = Field(False, description="Stop the run when gains are shrinking and below stopping.min_delta.")


class JudgeReliabilityConfig(Section):
    min_auc: float | None = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Alert, for each task, when the self-judge's held-out scores rank passing above failing answers "
        "with a ROC AUC (judge_auc against the task's verifier; 0.5 = chance) below this: there a rise in the judge's "
        "scores is no evidence of improvement. Unset turns the check off.",
    )
    stop: bool = Field(False, description="Stop the run when the self-judge is unreliable on a task.")


class MonitorsConfig(Section):
    enabled: bool = Field(True, description="Measure the failure modes after every evaluation.")
    reward_hacking: RewardHackingConfig = Field(default_factory=RewardHackingConfig, description="Judge score vs held-out metric.")
    bias: BiasConfig = Field(default_factory=BiasConfig, description="Position, length and perspective bias of the judge.")
    diversity: DiversityConfig = Field(default_factory=DiversityConfig, description="Mode collapse: diversity of samples.")
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig, description="Diminishing returns: gain per iteration.")
    judge_reliability: JudgeReliabilityConfig = Field(
        default_factory=JudgeReliabilityConfig, description="Self-judge vs the held-out verifiers, per task."
    )


class ReviewConfig(Section):
    every: int = Field(
        0, ge=0, description="Human validation checkpoint every this many iterations (0 = never); see `autodidact review`."
    )
    items: int = Field(12, ge=1, description="Judged items queued per checkpoint, stratified by judge score.")
    kind: Literal["auto", "score", "pair"] = Field(
        "auto",
        description="'score': a person scores one response 0-10; 'pair': a person picks the better of two; "
        "'auto': pairs for a relative judge (pairwise, contrastive, self-consistency), scores otherwise.",
    )
    pause: bool = Field(
        False, description="Pause the run after a checkpoint until its items are rated; continue with `autodidact resume`."
    )
    min_agreement: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Stop the run when human-judge agreement (Spearman for scores, Cohen's kappa for pairs) "
        "falls below this. Off when unset.",
    )
    min_ratings: int = Field(5, ge=2, description="Ratings a checkpoint needs before its agreement counts.")


class DistributedConfig(Section):
    backend: Literal["none", "ray"] = Field(
        "none",
        description="'ray': generation and judging are split into shards over a Ray cluster, one engine replica "
        "per worker; results equal the single-process run's for the same seed.",
    )
    address: str | None = Field(
        None,
        description="Ray cluster address ('auto' joins the cluster `ray start` made on this machine); unset starts "
        "a local cluster with distributed.workers workers.",
    )
    workers: int = Field(2, ge=1, le=1024, description="Engine replicas (Ray actors), one per worker.")
    cpus_per_worker: float = Field(1.0, gt=0.0, description="CPUs Ray reserves for each replica.")
    gpus_per_worker: float = Field(0.0, ge=0.0, description="GPUs Ray reserves for each replica.")
    max_shard_retries: int = Field(
        2, ge=0, le=20, description="A shard whose worker dies is retried on another worker this many times."
    )


class RunConfig(Section):
    """Everything a run needs; saved, resolved, as `config.yaml` in the run directory."""

    name: str | None = Field(None, description="Run name; the run directory is output_dir/name (default: a timestamp).")
    output_dir: str = Field("runs", description="Folder that holds run directories.")
    seed: int = Field(0, ge=0, description="Seed for prompts, sampling and training.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Which model improves itself.")
    tasks: TasksConfig = Field(default_factory=TasksConfig, description="Where prompts come from.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Sampling of training samples.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="How samples are evaluated.")
    selection: SelectionConfig = Field(default_factory=SelectionConfig, description="Which samples become training data.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="How the model is trained.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Held-out evaluation.")
    stopping: StoppingConfig = Field(default_factory=StoppingConfig, description="When the loop stops.")
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig, description="The failure modes, measured every iteration.")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="Human validation checkpoints.")
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Spreading generation and judging over machines (Ray)."
    )
    tracking: Literal["none", "tensorboard", "wandb", "mlflow"] = Field(
        "none",
        description="Experiment tracker for per-iteration metrics, monitors, samples and the trainers' own logs: "
        "'tensorboard' writes RUN_DIR/tracking; 'wandb' and 'mlflow' use their usual environment variables "
        "(WANDB_PROJECT, MLFLOW_TRACKING_URI) and must be installed.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.tasks.prompts_per_iteration > self.tasks.train_size:
            raise ValueError(
                f"tasks.prompts_per_iteration ({self.tasks.prompts_per_iteration}) exceeds tasks.train_size "
                f"({self.tasks.train_size}); lower it or raise train_size"
            )
        if self.selection.revise and self.judge.method != "contrastive":
            raise ValueError(
                f"selection.revise needs judge.method 'contrastive' (its explanations say what to fix), not "
                f"'{self.judge.method}'; set judge.method=contrastive or selection.revise=false"
            )
        if self.distributed.backend == "ray" and self.model.engine != "transformers":
            raise ValueError(
                f"distributed.backend 'ray' runs in-process engine replicas; model.engine '{self.model.engine}' "
                "serves its own: set model.engine=transformers or distributed.backend=none"
            )
        if self.training.num_processes > 1 and self.training.method == "grpo":
            raise ValueError(
                "training.num_processes > 1 runs SFT or DPO through accelerate; GRPO trains in one process: "
                "set training.num_processes=1 or training.method=sft"
            )
        searched = [s for s in self.tasks.sources if s.type == "documents" and s.search]
        if self.training.method == "grpo" and len(searched) > 1:  # TRL calls a tool by its name: one `search`
            raise ValueError(
                f"training.method 'grpo' gives the model one search tool, but documents sources "
                f"{[s.name for s in searched]} each search their own documents; put the documents in one source "
                "(one folder) or set search: false on all but one"
            )
        if self.training.method == "grpo" and any(s.search_first for s in searched):
            raise ValueError(
                "search_first runs the first search of the <search> text protocol; with training.method 'grpo' "
                "TRL runs the model's own tool calls: set the documents source's search_first: false"
            )
        if self.selection.revise and self.training.method != "sft":
            raise ValueError(
                "selection.revise adds SFT examples, so it needs training.method 'sft'; "
                "set training.method=sft or selection.revise=false"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_stays_inside_output_dir(cls, name: str | None) -> str | None:
        # The run directory is output_dir/name: '..' or a '/' would put it (and what
        # a failed start deletes) outside output_dir.
        if name is not None and (name in ("", ".", "..") or not all(c.isalnum() or c in "-_." for c in name)):
            raise ValueError("use letters, digits, '-', '_' and '.' only (not '.' or '..')")
        return name

    def run_dir(self) -> Path:
        if self.name is None:
            raise AutodidactError("config: name is not set; call `with_default_name()` first.")
        return Path(self.output_dir) / self.name


# --- loading -----------------------------------------------------------------


def _format_error(err: ValidationError) -> str:
    first = err.errors()[0]
    if not first["loc"]:  # a check across sections: its message names the fields and the fix
        return f"config: {first['msg'].removeprefix('Value error, ')}."
    field = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"config: unknown key {field!r}. Remove it or check the spelling (see `autodidact init`)."
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"config: {field}: {msg}{got_text}. Fix this value in the config file or with --set {field}=..."


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise AutodidactError(f"--set {dotted}: '{key}' is a value, not a section.")
        node = child
    node[keys[-1]] = value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn `["a.b=3", "c=[x, y]"]` into a nested dict; values are parsed as YAML."""
    data: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AutodidactError(f"--set '{item}': expected key=value, e.g. --set stopping.max_iterations=2.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError, RecursionError):
            # PyYAML raises ValueError for an impossible date and RecursionError for deep
            # nesting; like a syntax error, the text is kept as a plain string.
            value = raw
        _set_path(data, key.strip(), value)
    return data


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key; an empty mapping in `extra` empties the key
    (`--set judge.tasks={}`), since merging it would change nothing."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (optional), apply `key=value` overrides, and validate."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise AutodidactError(f"config file '{path}' not found. Create one with `autodidact init {path}`.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise AutodidactError(
                f"config file '{path}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
                f"{exc.start}); save it as UTF-8."
            ) from None
        try:
            data = yaml.safe_load(text) or {}
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            # ValueError: a value PyYAML cannot construct (2020-13-45); RecursionError: deep nesting.
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" line {line + 1}" if line is not None else ""
            raise AutodidactError(f"config file '{path}'{where} is not valid YAML. Fix its syntax.") from None
        if not isinstance(data, dict):
            raise AutodidactError(
                f"config file '{path}' must be a mapping of sections (model:, tasks:, ...); "
                "start from the example `autodidact init` writes."
            )
    data = _deep_merge(data, parse_overrides(overrides or []))
    return validate_config(data)


def validate_config(data: dict[str, Any] | RunConfig) -> RunConfig:
    """Validate a dict into a `RunConfig`, raising a one-line `AutodidactError`."""
    if isinstance(data, RunConfig):
        return data
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise AutodidactError(_format_error(err)) from None
    except AutodidactError as err:  # raised inside a validator (unknown names)
        raise AutodidactError(f"config: {err}") from None


def to_yaml(config: RunConfig) -> str:
    """The resolved config as YAML (what is saved in the run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def example_yaml() -> str:
    """An example config with every option, each with its help text as a comment."""
    lines = ["# AutoDidact run configuration. Run it with: autodidact run THIS_FILE.yaml", ""]

    def emit(model: type[BaseModel], instance: BaseModel, indent: int) -> None:
        pad = "  " * indent
        for name, field in model.model_fields.items():
            value = getattr(instance, name)
            if field.description:
                lines.append(f"{pad}# {field.description}")
            if isinstance(value, BaseModel):
                lines.append(f"{pad}{name}:")
                emit(type(value), value, indent + 1)
            else:
                dumped = yaml.safe_dump({name: value}, default_flow_style=True, width=1000).strip()
                lines.append(f"{pad}{dumped.removeprefix('{').removesuffix('}')}")
        if indent == 0:
            return
        lines.append("")

    emit(RunConfig, RunConfig(), 0)
    return "\n".join(lines).rstrip() + "\n"
