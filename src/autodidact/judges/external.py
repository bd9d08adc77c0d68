"""The external verifier: a judge model that is not the policy and is never trained.

`judge.model` picks the engine every judge prompt (direct, rubric, pairwise,
...) runs on:

- null: the policy judges itself (shared weights; the default).
- 'default', a local directory, a .gguf file or a hub id: a second model,
  loaded with `load_model` into its own `TransformersEngine`, gradients off.
  The trainer only ever sees the policy, so this judge stays fixed across
  iterations (naming the policy's own base model gives a frozen copy of it).
- an http(s):// URL: an OpenAI-compatible server (`OpenAIEngine`), reached
  with the settings of `judge.server` (model_name, api_key_env, tokenizer,
  concurrency, timeout, max_retries, top_logprobs) and checked with one
  request at start-up.

`judge.mode: logprobs` on an engine without log-probabilities is a config
error, not a silent switch to 'generate': the two modes score differently,
and a run must not become a different experiment than the one configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autodidact.engines import Engine, EngineError, TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.models import load_model, resolve_model

if TYPE_CHECKING:
    from autodidact.config import JudgeBase, RunConfig
    from autodidact.engines.openai_engine import OpenAIEngine


def is_server(spec: str | None) -> bool:
    """Whether a judge's `model` names a server (an http(s):// URL) rather than local weights."""
    return spec is not None and spec.startswith(("http://", "https://"))


def judge_engine(config: RunConfig, policy_engine: Engine, http_client: Any = None) -> Engine:
    """The engine the judge runs on: the policy's, a separate local model's, or a server's.

    Raises:
        AutodidactError: the model or server cannot be used, the API key variable
            is unset, or mode 'logprobs' meets an engine without log-probabilities.
    """
    j = config.judge
    if j.model is None:
        engine: Engine = policy_engine
    elif is_server(j.model):
        engine = server_engine(j, http_client)
    else:

        try:
            model, tokenizer = load_model(j.model, config.model.dtype, config.model.device, field="judge.model")
        except AutodidactError as exc:
            raise AutodidactError(f"judge.model: {exc}") from None
        model.requires_grad_(False)
        engine = TransformersEngine(
            model, tokenizer, batch_size=config.generation.batch_size, score_batch_size=j.batch_size
        )
    if j.mode == "logprobs" and not engine.supports_logprobs:
        raise AutodidactError(
            f"judge.mode: 'logprobs' needs log-probabilities, which the judge at {j.model} does not return. "
            "Set judge.mode=generate."
        )
    return engine


def server_engine(j: JudgeBase, http_client: Any = None) -> OpenAIEngine:
    """An `OpenAIEngine` for `judge.model` with `judge.server`'s settings, probed once so that a wrong
    URL, name or key fails now."""
    # Imported here: the `openai` client loads only for a judge on a server (as `autodidact.engines` does).
    from autodidact.engines.openai_engine import OpenAIEngine, read_api_key

    s = j.server
    api_key = read_api_key(s.api_key_env, "judge.server.api_key_env")
    engine = OpenAIEngine(
        j.model,
        s.model_name,
        api_key=api_key,
        tokenizer=_chat_tokenizer(s.tokenizer) if s.tokenizer else None,
        concurrency=s.concurrency,
        timeout=s.timeout,
        max_retries=s.max_retries,
        top_logprobs=s.top_logprobs,
        http_client=http_client,
    )
    try:
        engine.probe()
    except EngineError as exc:
        raise AutodidactError(
            f"judge.model: the judge server cannot be used: {exc}. Start it, or fix judge.model, "
            "judge.server.model_name or judge.server.api_key_env."
        ) from None
    return engine


def _chat_tokenizer(spec: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec, "judge.server.tokenizer"))
    except AutodidactError as exc:
        raise AutodidactError(f"judge.server.tokenizer: {exc}") from None
    except Exception as exc:
        raise AutodidactError(f"judge.server.tokenizer: could not load '{spec}': {exc}") from None
    if tokenizer.chat_template is None:
        raise AutodidactError(f"judge.server.tokenizer: '{spec}' has no chat template; use the served model's tokenizer.")
    return tokenizer


__all__ = ["is_server", "judge_engine", "server_engine"]
