"""Reading a config: YAML file + `--set a.b=c` overrides -> a validated `RunConfig`, and back to YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from autodidact.config.base import SECRET_FIELDS
from autodidact.config.judge import TAG_PREFIX, JudgeConfig, foreign_key_message
from autodidact.config.run import RunConfig
from autodidact.config.saved import upgrade_saved_config
from autodidact.errors import AutodidactError


def _path(loc: tuple[Any, ...]) -> tuple[str, str | None]:
    """An error location as a dotted key, without the judge union's tags; and the innermost judge method."""
    parts, method = [], None
    for part in loc:
        if isinstance(part, str) and part.startswith(TAG_PREFIX):
            method = part.removeprefix(TAG_PREFIX)
        else:
            parts.append(str(part))
    return ".".join(parts), method


def format_error(err: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """The first error of a validation as one line naming the key and the fix."""
    first = err.errors()[0]
    loc = prefix + tuple(first["loc"])
    if not loc:  # a check across sections: its message names the fields and the fix
        return f"config: {first['msg'].removeprefix('Value error, ')}."
    field, method = _path(loc)
    if first["type"] == "extra_forbidden":
        section, _, key = field.rpartition(".")
        moved = foreign_key_message(section, method, key) if method is not None else None
        if moved is not None:
            return f"config: {moved}"
        return f"config: unknown key {field!r}. Remove it or check the spelling (see `autodidact init`)."
    got = first.get("input")
    secret = loc[-1] in SECRET_FIELDS  # perhaps a pasted key: never echoed
    got_text = "" if isinstance(got, dict) or secret else f" (got {got!r})"
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


_MAX_FLOW_DEPTH = 500  # PyYAML composes a level of [ or { in 2 stack frames: deeper always exceeds 1000


def _nested_too_deep(raw: str) -> bool:
    """Whether unquoted `raw` opens more flow collections ([ or {) at once than PyYAML can parse."""
    if "'" in raw or '"' in raw:
        return False  # brackets inside quotes are text: leave it to the parser
    depth = deepest = 0
    for char in raw:
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    return deepest > _MAX_FLOW_DEPTH


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn `["a.b=3", "c=[x, y]"]` into a nested dict; values are parsed as YAML."""
    data: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AutodidactError(f"--set '{item}': expected key=value, e.g. --set stopping.max_iterations=2.")
        try:
            if _nested_too_deep(raw):  # PyYAML would recurse to a RecursionError, ~1 s later: the same outcome
                raise RecursionError
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
    # A run begun before the judge union saved every judge field: read it in the current shape.
    data = _deep_merge(upgrade_saved_config(data), parse_overrides(overrides or []))
    return validate_config(data)


def validate_config(data: dict[str, Any] | RunConfig) -> RunConfig:
    """Validate a dict into a `RunConfig`, raising a one-line `AutodidactError`."""
    if isinstance(data, RunConfig):
        return data
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise AutodidactError(format_error(err)) from None
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


def judge_config(**fields: Any) -> Any:
    """A validated run-level judge section, e.g. `judge_config(method="rubric", criteria=["correct"])`.

    Raises:
        AutodidactError: one line naming the field and the fix, as for a config file.
    """
    try:
        return TypeAdapter(JudgeConfig).validate_python(fields)
    except ValidationError as err:
        raise AutodidactError(format_error(err, prefix=("judge",))) from None


__all__ = ["example_yaml", "format_error", "judge_config", "load_config", "parse_overrides", "to_yaml", "validate_config"]
