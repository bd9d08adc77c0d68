"""What every config section shares: unknown keys refused, values re-validated on assignment,
and one server section (`ServerConfig`) used by the policy's server and by a judge's."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

SECRET_FIELDS = ("api_key_env",)  # their value may be a pasted key: errors never echo it


def env_var_name(name: str | None) -> str | None:
    """`name` if it can be an environment variable's name (errors about it never show the value)."""
    if name is not None and not (name.isascii() and name.isidentifier()):
        raise ValueError("give the name of an environment variable (e.g. OPENAI_API_KEY), not the key itself")
    return name


class Section(BaseModel):
    # Unknown keys are errors, not silently ignored: a typo must not run a
    # different experiment than the one the user meant.
    # inf and nan pass a one-sided bound (epochs: .inf is > 0), so they are refused everywhere.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ServerConfig(Section):
    """How to talk to an OpenAI-compatible server: the policy's (`model.server`) or a judge's (`judge.server`)."""

    model_name: str | None = Field(None, description="The model name the server serves (default: its first model).")
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the API key (e.g. OPENAI_API_KEY), never the key "
        "itself: the key is not written to the config or the run. null: no key.",
    )
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    # 120 s and 3 retries (the policy server's old defaults, not the judge's 60 s and 2): a request that
    # gives up fails its judgment, and failed judgments stop a run, so waiting longer is the safer side.
    timeout: float = Field(120.0, gt=0.0, description="Seconds per request attempt.")
    max_retries: int = Field(
        3,
        ge=0,
        le=20,
        description="Retries (exponential backoff) after a connection error, timeout, 429 or 5xx; after the "
        "last one that request (a judgment, a sample) fails.",
    )
    top_logprobs: int = Field(
        20,
        ge=1,
        le=20,
        description="Alternatives returned for a score token when judging with mode 'logprobs' (vLLM and "
        "/chat/completions allow 20, OpenAI's hosted /completions 5); a score outside them gets probability 0.",
    )

    @field_validator("api_key_env")
    @classmethod
    def _env_name_only(cls, name: str | None) -> str | None:
        return env_var_name(name)


__all__ = ["SECRET_FIELDS", "Section", "ServerConfig", "env_var_name"]
