"""Sampling, selection, training, held-out evaluation and stopping."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from autodidact.config.base import Section


class GenerationConfig(Section):
    samples_per_prompt: int = Field(4, ge=1, le=64, description="Samples generated per training prompt.")
    temperature: float = Field(0.8, ge=0.0, le=5.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    max_new_tokens: int = Field(64, ge=1, le=8192, description="Longest response, in tokens.")
    batch_size: int = Field(256, ge=1, le=1 << 16, description="Sequences (prompts x samples) decoded together; larger is faster on CPU up to memory.")
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


class SelectionConfig(Section):
    strategy: Literal["top_k", "threshold"] = Field(
        "top_k",
        description="'top_k': the best k samples per prompt; 'threshold': every sample scoring >= min_score (or "
        "the min_score_schedule's floor).",
    )
    top_k: int = Field(1, ge=1, le=64, description="Samples kept per prompt with strategy 'top_k'.")
    min_score: float | None = Field(
        None, ge=0.0, le=10.0, description="Absolute score floor (0-10); applies to both strategies when set."
    )
    min_score_schedule: list[float] | None = Field(
        None,
        description="Score floor per training iteration (entry i-1 for iteration i, the last entry repeated "
        "afterwards); replaces min_score when set. Rising, e.g. [5, 6.25, 7.5], against an agreement signal that "
        "decays as answers grow alike; falling, e.g. [7.5, 6.25, 5], a curriculum from confident to less "
        "confident prompts.",
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
    replay_base: bool = Field(
        False,
        description="Every later iteration also trains on iteration 1's selected examples (the base model's own "
        "samples, read from the store; an example already selected for the same prompt with the same text is "
        "trained on once): an anchor against drifting with a decaying judge. With training.method 'sft'.",
    )

    @field_validator("min_score_schedule")
    @classmethod
    def _floors_in_range(cls, schedule: list[float] | None) -> list[float] | None:
        if schedule is not None and (not schedule or any(not 0.0 <= f <= 10.0 for f in schedule)):
            raise ValueError("min_score_schedule needs at least one floor, each between 0 and 10")
        return schedule

    def min_score_at(self, iteration: int) -> float | None:
        """The score floor of a training iteration (1, 2, ...): the schedule's entry, else min_score."""
        if not self.min_score_schedule:
            return self.min_score
        return self.min_score_schedule[min(iteration, len(self.min_score_schedule)) - 1]


class TrainingConfig(Section):
    method: Literal["sft", "dpo", "grpo"] = Field(
        "sft",
        description="'sft': supervised fine-tuning on the selected samples; 'dpo': direct preference "
        "optimization on best-vs-worst pairs, against the previous iteration's model as reference; 'grpo': "
        "online RL (TRL GRPOTrainer) over the iteration's prompts, the judge's score as the reward.",
    )
    finetune: Literal["lora", "full"] = Field("lora", description="LoRA adapters (PEFT) or full fine-tuning.")
    lora_r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, le=1 << 16, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules that get LoRA adapters ('all-linear' or a list of names)."
    )
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0, description="Peak learning rate.")
    epochs: float = Field(1.0, gt=0.0, le=1000.0, description="Passes over each iteration's selected samples.")
    batch_size: int = Field(8, ge=1, le=1 << 16, description="Examples per optimizer step (per device).")
    gradient_accumulation_steps: int = Field(1, ge=1, le=1 << 16, description="Batches accumulated per optimizer step.")
    max_length: int = Field(512, ge=16, le=1 << 20, description="Longest training sequence (prompt + response), in tokens.")
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute activations in the backward pass: less memory, ~1.5x the compute. "
        "Turn on for models whose activations do not fit in memory.",
    )
    dpo_beta: float = Field(
        0.1,
        gt=0.0,
        le=100.0,
        description="With method 'dpo': how strongly the policy is held to the reference model (higher = closer).",
    )
    on_fault: Literal["retry", "stop"] = Field(
        "retry",
        description="After a training fault (a non-finite loss or weight, or a held-out collapse past "
        "stopping.max_metric_drop) the iteration is rolled back to the previous checkpoint; then 'retry' "
        "trains it again with a lower learning rate, 'stop' ends the run.",
    )
    max_retries: int = Field(2, ge=0, le=100, description="With on_fault 'retry': retries per iteration before the run stops.")
    retry_lr_factor: float = Field(
        0.5, gt=0.0, lt=1.0, description="With on_fault 'retry': each retry multiplies the learning rate by this."
    )
    num_processes: int = Field(
        1,
        ge=1,
        le=1024,
        description="Training processes (data parallel through `accelerate launch`): 1 trains in this process; "
        "more run DDP (gloo on CPU, NCCL on GPUs), with training.batch_size per process.",
    )
    accelerate_config: str | None = Field(
        None,
        description="An `accelerate` config file for multi-process training (DeepSpeed ZeRO or FSDP; see "
        "configs/accelerate/). Default: plain DDP with training.num_processes processes.",
    )


class EvaluationConfig(Section):
    max_new_tokens: int = Field(64, ge=1, le=8192, description="Longest held-out response, in tokens (greedy decoding).")
    judge_heldout: bool = Field(True, description="Also score held-out responses with the self-judge.")


class StoppingConfig(Section):
    max_iterations: int = Field(3, ge=1, le=1000, description="Training iterations (iteration 0 is the base model).")
    patience: int = Field(2, ge=1, le=1000, description="Stop after this many iterations without enough improvement.")
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


__all__ = ["EvaluationConfig", "GenerationConfig", "SelectionConfig", "StoppingConfig", "TrainingConfig"]
