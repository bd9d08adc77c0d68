"""Engines turn requests into text or log-probabilities.

One protocol, several implementations: in-process transformers, an
OpenAI-compatible server (`OpenAIEngine`), and vLLM in-process on a GPU
(`engines.vllm_engine.VLLMEngine`, the `vllm` extra; imported only there).

A request that fails (server unreachable, API error, timeout after the
retries) does not raise and is never a silent 0: `generate` returns its
completions with empty text and `error` set, and `continuation_logprobs`
returns a `FailedRow` for it: -inf for every continuation (no probability,
so a judge that does not look reads "no score", i.e. a failed judgment),
carrying the reason in `error`. `request_error(result)` reads the reason back
from either. In-process engines never fail per request.
"""

from __future__ import annotations

from typing import Any

from autodidact.engines.base import (
    Closes,
    Completion,
    CountsTokens,
    Engine,
    EngineError,
    FailedRow,
    MeasuresCertainty,
    ResponseCertainty,
    SamplingParams,
    ServesCheckpoints,
    Sleeps,
    request_error,
)
from autodidact.engines.counting import TokenCounter
from autodidact.engines.transformers_engine import TransformersEngine


def __getattr__(name: str) -> Any:
    # Imported on first use: the `openai` client is only needed for a judge server.
    if name == "OpenAIEngine":
        from autodidact.engines.openai_engine import OpenAIEngine

        return OpenAIEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Completion",
    "CountsTokens",
    "Engine",
    "EngineError",
    "FailedRow",
    "MeasuresCertainty",
    "OpenAIEngine",
    "ResponseCertainty",
    "SamplingParams",
    "ServesCheckpoints",
    "Sleeps",
    "Closes",
    "TokenCounter",
    "TransformersEngine",
    "request_error",
]
