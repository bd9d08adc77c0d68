"""What every judge method's section shares (`JudgeBase`), and a judge's server section.

Its own module so that the method classes can live in several modules (`judge_methods.py`,
`judge_signals.py`) that all build on it without importing each other in a cycle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from autodidact.config.base import Section, ServerConfig


def is_server_url(spec: str | None) -> bool:
    """Whether a judge's `model` names an OpenAI-compatible server rather than local weights."""
    return spec is not None and spec.startswith(("http://", "https://"))


class JudgeServerConfig(ServerConfig):
    """A judge's server (`judge.server`), used when `judge.model` is an http(s):// URL."""

    tokenizer: str | None = Field(
        None,
        description="A local directory or hub id whose chat template renders the judge prompts, sent to the "
        "server's /completions endpoint (exact answer prefixes, as with a local judge). null: the server renders "
        "the messages (/chat/completions; see docs on answer prefixes).",
    )


class JudgeBase(Section):
    method: str = Field(..., description="The judge method; selects which of the classes below applies.")
    model: str | None = Field(
        None,
        description="Who judges. null: the policy judges itself (shared weights); in an ensemble member or a "
        "per-task judge, null runs on the enclosing judge's model. 'default', a local directory, a .gguf file or "
        "a hub id: a separate copy loaded next to the policy and never trained. An http(s):// URL: an "
        "OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI), e.g. http://localhost:8000/v1, "
        "reached with the settings in `server`.",
    )
    server: JudgeServerConfig = Field(
        default_factory=JudgeServerConfig,
        validate_default=True,  # a server URL in `model` with no server section is checked too
        description="With a server URL in `model`: how to talk to it.",
    )
    mode: Literal["logprobs", "generate"] = Field(
        "logprobs",
        description="'logprobs': the score is the probability-weighted mean over the score tokens "
        "(one forward pass); 'generate': the score is parsed from generated text (for servers without "
        "log-probabilities). Also used by the direct judge that scores held-out answers for a relative judge.",
    )
    batch_size: int = Field(16, ge=1, le=1 << 16, description="Judge prompts scored together in one forward pass.")
    min_score_mass: float = Field(
        1e-4,
        ge=0.0,
        lt=1.0,
        description="With mode 'logprobs': a judgment is failed (None) when the score tokens get less "
        "probability than this in total.",
    )

    @field_validator("server")
    @classmethod
    def _server_needs_url(cls, server: JudgeServerConfig, info: ValidationInfo) -> JudgeServerConfig:
        if is_server_url(info.data.get("model")):
            if not server.model_name:
                raise ValueError("model is a server URL; set server.model_name to the model name it serves")
            return server
        for name in ("model_name", "tokenizer", "api_key_env"):
            if getattr(server, name) is not None:
                raise ValueError(f"{name} applies only when the judge's model is a server URL (http://...)")
        return server


__all__ = ["JudgeBase", "JudgeServerConfig", "is_server_url"]
