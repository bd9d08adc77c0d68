"""Reading a config: YAML file + `--set a.b=c` overrides -> a validated `RunConfig`, and back to YAML."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from autodidact.config.base import SECRET_FIELDS
from autodidact.config.judge import TAG_PREFIX, JudgeConfig, foreign_key_message
from autodidact.config.overrides import merge_overrides, parse_overrides
from autodidact.config.run import RunConfig
from autodidact.config.saved import upgrade_saved_config
from autodidact.config.sources import SOURCE_TYPES
from autodidact.config.yaml_safe import MAX_BYTES, DuplicateKeyError, YAMLBombError, load_yaml
from autodidact.errors import AutodidactError

# pydantic names the member of a plain union in an error's location (training.target_modules.str);
# no field is named like a type.
_UNION_LABELS = ("str", "int", "float", "bool", "none")
RUN_CONFIG = "config.yaml"  # what a run directory holds (autodidact.loop.CONFIG_FILE; config imports no loop)


def _path(loc: tuple[Any, ...]) -> tuple[str, str | None]:
    """An error location as a dotted key (one `--set` takes), without the judge and source unions' tags;
    and the innermost judge method."""
    parts, method, previous = [], None, None
    for part in loc:
        if isinstance(part, str) and part.startswith(TAG_PREFIX):
            method = part.removeprefix(TAG_PREFIX)
        elif isinstance(previous, int) and part in SOURCE_TYPES:  # tasks.sources.0.<type>.path
            pass
        elif part in _UNION_LABELS or (isinstance(part, str) and "[" in part):  # `str | list[str]`'s member
            pass
        else:
            parts.append(str(part))
        previous = part
    return ".".join(parts), method


def _shorten(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters: an error line never echoes a pasted document."""
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text):,} characters)"


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
    got_text = "" if isinstance(got, dict) or secret else f" (got {_shorten(repr(got))})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"config: {field}: {msg}{got_text}. Fix this value in the config file or with --set {field}=..."


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file, read within the bounds of `yaml_safe`.

    Raises:
        AutodidactError: one line naming the file, the problem (and its line) and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise AutodidactError(_not_a_file(path))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise AutodidactError(
            f"config file '{path}' is {size / (1 << 20):.1f} MB, over the {MAX_BYTES >> 20} MB a config may be; "
            "check that it is the right file (prompts belong in a source file, tasks.sources)."
        )
    with path.open("rb") as f:
        raw = f.read(MAX_BYTES + 1)  # bounded even if the file grows after the size check
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AutodidactError(
            f"config file '{path}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
            f"{exc.start}); save it as UTF-8."
        ) from None
    try:
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        first, second = exc.lines
        raise AutodidactError(
            f"config file '{path}': key {exc.key!r} appears twice (lines {first} and {second}); remove one."
        ) from None
    except YAMLBombError as exc:
        raise AutodidactError(f"config file '{path}': {exc}.") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a value PyYAML cannot construct (2020-13-45); RecursionError: deep nesting.
        raise AutodidactError(_syntax_message(path, exc)) from None
    if data is None:
        return {}  # an empty file: every default
    if not isinstance(data, dict):
        raise AutodidactError(
            f"config file '{path}' must be a mapping of sections (model:, tasks:, ...), not a "
            f"{'list' if isinstance(data, list) else 'single value'}; start from the example `autodidact init` writes."
        )
    return data


def _not_a_file(path: Path) -> str:
    """Why `path` cannot be read as a config, with a command that works for what it is."""
    if path.is_dir():
        if (path / RUN_CONFIG).is_file():
            return f"config file '{path}' is a run directory; continue that run with `autodidact resume {path}`."
        inside = path / "autodidact.yaml"
        if inside.is_file():
            return f"config file '{path}' is a directory; run the config in it with `autodidact run {inside}`."
        return (
            f"config file '{path}' is a directory, not a YAML file; create a config in it with "
            f"`autodidact init {inside}`, then run that file."
        )
    if path.exists():
        return f"config file '{path}' is not a regular file; give the path of a YAML file."
    if not path.parent.is_dir():
        return f"config file '{path}' not found: there is no folder '{path.parent}'. Check the path."
    return f"config file '{path}' not found. Create one with `autodidact init {path}`."


def _syntax_message(path: Path, exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    problem = str(getattr(exc, "problem", "") or "")
    if "expected a single document" in str(getattr(exc, "context", "") or ""):
        return f"config file '{path}'{where} starts a second YAML document (---); remove it: a config is one document."
    if "'\\t'" in problem or "\t" in problem:
        return f"config file '{path}'{where} is indented with a tab; use spaces."
    return f"config file '{path}'{where} is not valid YAML. Fix its syntax."


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (optional), apply `key=value` overrides, and validate.

    A run's saved `config.yaml` is read here too, within the same bounds.
    """
    data = read_config_file(path) if path is not None else {}
    extra = parse_overrides(overrides or [])
    # A run begun before the judge union saved every judge field: read it in the current shape.
    data = upgrade_saved_config(data)
    if extra:
        data = merge_overrides(data, extra, defaults=_defaults())
    return validate_config(data)


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    """The default config as plain data: the lists `--set x.0.y=...` may index when the file has none."""
    return RunConfig().model_dump(mode="json")


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


__all__ = [
    "example_yaml",
    "format_error",
    "judge_config",
    "load_config",
    "parse_overrides",
    "read_config_file",
    "to_yaml",
    "validate_config",
]
