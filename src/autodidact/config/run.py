"""`RunConfig`: every section of a run, and the checks that span sections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from autodidact.config.base import MAX_SEED, Section
from autodidact.config.judge import DirectRunJudgeConfig, JudgeConfig
from autodidact.config.model import ModelConfig
from autodidact.config.monitors import MonitorsConfig
from autodidact.config.sources import TasksConfig
from autodidact.config.training import (
    EvaluationConfig,
    GenerationConfig,
    SelectionConfig,
    StoppingConfig,
    TrainingConfig,
)
from autodidact.errors import AutodidactError


class ReviewConfig(Section):
    every: int = Field(
        0, ge=0, le=1000, description="Human validation checkpoint every this many iterations (0 = never); see `autodidact review`."
    )
    items: int = Field(12, ge=1, le=10_000, description="Judged items queued per checkpoint, stratified by judge score.")
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
    min_ratings: int = Field(5, ge=2, le=10_000, description="Ratings a checkpoint needs before its agreement counts.")


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
    cpus_per_worker: float = Field(1.0, gt=0.0, le=1024.0, description="CPUs Ray reserves for each replica.")
    gpus_per_worker: float = Field(0.0, ge=0.0, le=64.0, description="GPUs Ray reserves for each replica.")
    max_shard_retries: int = Field(
        2, ge=0, le=20, description="A shard whose worker dies is retried on another worker this many times."
    )


class RunConfig(Section):
    """Everything a run needs; saved, resolved, as `config.yaml` in the run directory."""

    name: str | None = Field(None, description="Run name; the run directory is output_dir/name (default: a timestamp).")
    output_dir: str = Field("runs", description="Folder that holds run directories.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for prompts, sampling and training.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Which model improves itself.")
    tasks: TasksConfig = Field(default_factory=TasksConfig, description="Where prompts come from.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Sampling of training samples.")
    judge: JudgeConfig = Field(
        default_factory=DirectRunJudgeConfig,
        description="How samples are evaluated: one section per judge.method, holding only that method's keys.",
    )
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
        if self.selection.replay_base and self.training.method != "sft":
            raise ValueError(
                "selection.replay_base adds iteration 1's SFT examples, so it needs training.method 'sft'; "
                "set training.method=sft or selection.replay_base=false"
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


__all__ = ["DistributedConfig", "ReviewConfig", "RunConfig"]
