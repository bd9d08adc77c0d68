"""What every config section shares: unknown keys refused, values re-validated on assignment,
and one server section (`ServerConfig`) used by the policy's server and by a judge's."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

SECRET_FIELDS = ("api_key_env",)  # their value may be a pasted key: errors never echo it
# The largest seed: numpy's legacy seeding (transformers' set_seed) takes < 2**32, and a run adds
# the iteration number (and multiplies by 1000) to it; 2**31 - 1 leaves room for both.
MAX_SEED = 2**31 - 1
_BOOL_FOR_NUMBER = PydanticCustomError("bool_for_number", "expected a number, not true/false")


def _takes_number(annotation: Any) -> bool:
    """Whether a field typed `annotation` takes an int or float but no bool (`int | None`, `float`...)."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        options = get_args(annotation)
        return bool not in options and any(_takes_number(option) for option in options)
    return False


def _bools_for_numbers(annotation: Any, value: Any) -> list[tuple[int, ...]]:
    """Where `value` puts a bool in place of a number: () for the value itself, (i,) for a list's entry."""
    if isinstance(value, bool):
        return [()] if _takes_number(annotation) else []
    if isinstance(value, list):
        options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
        lists = [get_args(option)[0] for option in options if get_origin(option) is list and get_args(option)]
        return [(i,) for i, item in enumerate(value) if isinstance(item, bool) and any(map(_takes_number, lists))]
    return []


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

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        # pydantic's lax mode reads true as 1 (or 1.0): `--set stopping.max_iterations=true` would run one
        # iteration. Strings stay lax ("8" is 8), as YAML users expect. A model validator, not a field
        # validator on "*": pydantic forbids a before-validator on a union's discriminator (a source's
        # `type`). The error is raised at the field's location, so it reads as any other field's error.
        if not isinstance(data, dict):
            return data
        errors = [
            InitErrorDetails(type=_BOOL_FOR_NUMBER, loc=(name, *where), input=value[where[0]] if where else value)
            for name, value in data.items()
            if (field := cls.model_fields.get(name)) is not None
            for where in _bools_for_numbers(field.annotation, value)
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


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
    timeout: float = Field(120.0, gt=0.0, le=86_400.0, description="Seconds per request attempt.")
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


__all__ = ["MAX_SEED", "SECRET_FIELDS", "Section", "ServerConfig", "env_var_name"]
