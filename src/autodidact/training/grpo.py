"""Online RL with TRL's `GRPOTrainer`: the configured judge or verifier is the reward.

One call is one outer iteration: one pass (times `training.epochs`) over the
prompt pool. The live policy samples a group of completions per prompt,
`reward` scores them, and each completion is made more or less likely by how
its reward compares with its group's mean. The LoRA adapter the loop made is
trained in place, as in SFT and DPO: no second adapter.

Choices, and where they depart from textbook GRPO:

- KL coefficient 0 (TRL's default `beta`): no KL term and no reference model,
  so no adapter clone or model copy is held; held-out evaluation and the
  monitors watch for drift instead.
- A failed judgment (`None`) goes to TRL as `None`, never as 0. TRL 1.x turns
  it into NaN, leaves it out of its group's mean and std, and gives it
  advantage 0: it neither rewards nor punishes the completion.
- `training.batch_size` counts completions per forward/backward pass, as it
  counts sequences in SFT; times `gradient_accumulation_steps` it must be a
  multiple of `samples_per_prompt`, so every optimizer step holds whole groups.
- `training.max_length` does not apply: a sequence is its prompt plus at most
  `generation.max_new_tokens` generated tokens.
- Tools: TRL runs the multi-turn tool calls itself, but only with a chat
  template that renders tool calls and whose responses TRL can parse (Qwen2.5/3,
  Llama 3.1/3.2, ... in TRL 1.16). The bundled SmolLM2's template cannot, so
  `tools` is refused there rather than silently ignored. The loop passes a
  documents source's `search` this way (native tool calls, not the `<search>`
  text protocol that held-out evaluation uses) and refuses a run whose model
  cannot take it at start (`check_tools`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from autodidact.config import GenerationConfig, TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.records import Prompt
from autodidact.tracking import TrainerReport
from autodidact.training.trainer import TrainResult, TRLMethod, train_with

log = logging.getLogger(__name__)

Reward = Callable[[list[Prompt], list[str]], list[float | None]]  # (prompts, responses) -> score, None = failed


@dataclass(frozen=True)
class GRPOResult(TrainResult):
    completions: int = 0  # generated and scored, all epochs
    mean_reward: float | None = None  # over the scored completions; None if none was scored
    failed_rewards: int = 0  # completions whose reward was None


def train_grpo(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    reward: Reward,
    config: TrainingConfig,
    generation: GenerationConfig,
    seed: int,
    *,
    temperature: float | None = None,
    tools: Sequence[Callable[..., Any]] | None = None,
    max_tool_calls: int | None = None,
    report: TrainerReport = TrainerReport(),
) -> GRPOResult:
    """One GRPO pass over `prompts`, updating `model` in place.

    Args:
        model: the policy (a `PeftModel` with LoRA, the plain model with full fine-tuning).
        tokenizer: its tokenizer, with a chat template.
        prompts: this iteration's training prompts.
        reward: scores responses to prompts; `None` marks a failed judgment (never read as 0).
        config: learning rate, batch size (completions), gradient accumulation, epochs.
        generation: `samples_per_prompt` (the group size, 2 or more), `max_new_tokens`, `temperature`, `top_p`.
        seed: training and sampling seed.
        temperature: replaces `generation.temperature` (the loop passes `temperature_at(iteration)`).
        tools: functions the model may call while generating (typed, with Google-style docstrings).
        max_tool_calls: tool-calling rounds per completion (None: TRL's default, no limit but the length).

    Returns:
        `TrainResult` (prompts per pass as `examples`; prompt + completion tokens) with completions
        scored, their mean reward and the number of failed rewards.

    Raises:
        AutodidactError: fewer than 2 samples per prompt, temperature 0, steps that cannot hold whole
            groups, fewer prompts than one step needs, or tools with a template that cannot call them.
    """
    from trl import GRPOConfig, GRPOTrainer

    temperature = generation.temperature if temperature is None else temperature
    prompts_per_step = _check(config, generation.samples_per_prompt, temperature, tokenizer, tools)
    if prompts and len(prompts) < prompts_per_step:
        raise AutodidactError(
            f"GRPO needs {prompts_per_step} prompts per step but has {len(prompts)}: "
            "lower training.batch_size or raise tasks.prompts_per_iteration."
        )
    if dropped := len(prompts) % prompts_per_step:  # TRL's sampler keeps whole steps only
        log.warning("%d of %d prompts not trained on: not a multiple of %d", dropped, len(prompts), prompts_per_step)

    by_id = {p.id: p for p in prompts}
    scores: list[float | None] = []  # every reward handed to TRL, all steps

    def judge_reward(prompts, completions, prompt_id, **kwargs) -> list[float | None]:
        got = list(reward([by_id[i] for i in prompt_id], [_response_text(c) for c in completions]))
        scores.extend(got)
        return got  # None stays None: TRL leaves it out of the group baseline, advantage 0

    def arguments(common: dict[str, Any]):
        del common["max_length"]  # not a GRPOConfig field: a sequence is its prompt + max_completion_length
        return GRPOConfig(
            **common, num_generations=generation.samples_per_prompt, max_completion_length=generation.max_new_tokens,
            temperature=temperature, top_p=generation.top_p,
            beta=0.0,  # TRL's default, stated: no reference model (see the module docstring)
            max_tool_calling_iterations=max_tool_calls,
        )

    method = TRLMethod(
        name="grpo",
        nothing="no training prompts",
        arguments=arguments,
        trainer=lambda model, args, data, tok: GRPOTrainer(
            model=model, reward_funcs=judge_reward, args=args, train_dataset=data, processing_class=tok,
            tools=list(tools) if tools else None,
        ),
        examples=lambda trainer: len(prompts) - dropped,
        tokens=lambda trainer: int(trainer.state.num_input_tokens_seen),
    )
    rows = [{"prompt": list(p.messages), "prompt_id": p.id} for p in prompts]
    result = train_with(method, model, tokenizer, rows, config, seed, report)
    scored = [s for s in scores if s is not None]
    return GRPOResult(
        **asdict(result),
        completions=len(scores),
        mean_reward=sum(scored) / len(scored) if scored else None,
        failed_rewards=len(scores) - len(scored),
    )


def _check(config: TrainingConfig, n: int, temperature: float, tokenizer, tools) -> int:
    """Refuse settings GRPO cannot train with; returns the prompts per optimizer step."""
    if n < 2:
        raise AutodidactError(
            "training.method 'grpo' compares samples of one prompt: set generation.samples_per_prompt to 2 or more."
        )
    if temperature <= 0:
        raise AutodidactError("training.method 'grpo' needs sampled completions: set generation.temperature above 0.")
    per_step = config.batch_size * config.gradient_accumulation_steps
    if per_step % n:
        raise AutodidactError(
            f"with training.method 'grpo', training.batch_size x gradient_accumulation_steps ({per_step}) must be "
            f"a multiple of generation.samples_per_prompt ({n}) so each step holds whole groups."
        )
    if tools:
        check_tools(tokenizer)
    return per_step // n


def check_tools(tokenizer) -> None:
    """Refuse a chat template that cannot render tool calls: TRL could neither show the tools nor parse a call.

    Raises:
        AutodidactError: naming the fix.
    """
    from trl.chat_template_utils import supports_tool_calling

    if not supports_tool_calling(tokenizer):
        raise AutodidactError(
            "GRPO tools (a documents source's search) need a chat template that renders tool calls (e.g. "
            "Qwen2.5/Qwen3, Llama 3.1 instruct), and this model's does not: pick such a model in model.name, "
            "or use training.method sft or dpo (or the source's search: false)."
        )


def _response_text(completion: str | list[dict[str, Any]]) -> str:
    """What the judge reads: the last assistant message (after any tool turns), or the plain string."""
    if isinstance(completion, str):
        return completion
    answers = [m.get("content") or "" for m in completion if m.get("role") == "assistant"]
    return answers[-1] if answers else ""
