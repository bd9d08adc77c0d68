"""The configuration reference (docs/CONFIG.md), generated from `RunConfig`'s help texts.

Every section of the config becomes one table, `| key | type | default |
description |`, with dotted keys (`judge.method`), readable types (the
values of a `Literal` listed, bounds shown) and defaults written as YAML.
Each source type of the `tasks.sources` union gets a table of its own.
The output depends only on the config classes, so `tests/test_docs.py` can
compare it with the checked-in page:

    python -m autodidact.apps.config_reference > docs/CONFIG.md
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from autodidact.config import JudgeBase, JudgeServerConfig, RunConfig, TasksConfig
from autodidact.config.judge import RunJudgeFields
from autodidact.config.judge_methods import METHOD_CLASSES
from autodidact.config.registry import BUILTIN_TASKS, JUDGE_METHODS

REGENERATE = "python -m autodidact.apps.config_reference > docs/CONFIG.md"

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"  # an int bound exactly: 2147483647, not 2.14748e+09


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of `A | B` or `Optional[A]`, or None when `tp` is not a union."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.get_args(tp)
    return None


def source_types() -> list[type[BaseModel]]:
    """The classes of the `tasks.sources` union, in declaration order."""
    (item,) = typing.get_args(TasksConfig.model_fields["sources"].annotation)  # Annotated[A | B | ..., Field(...)]
    return list(typing.get_args(typing.get_args(item)[0]))


def _is_judge_union(tp: Any) -> bool:
    """Whether `tp` is the judge union (`JudgeMember`): Annotated[Annotated[JudgeClass, Tag] | ..., ...]."""
    if typing.get_origin(tp) is not typing.Annotated:
        return False
    members = _union_members(typing.get_args(tp)[0]) or ()
    classes = [(typing.get_args(m) or (m,))[0] for m in members]  # Annotated[JudgeClass, Tag] -> JudgeClass
    return any(_is_section(c) and issubclass(c, JudgeBase) for c in classes)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    members = _union_members(tp)
    if members is not None:
        names = [_type_name(m) for m in members if m is not type(None)]
        if type(None) in members:
            names.append("null")
        return " or ".join(names)
    origin = typing.get_origin(tp)
    if origin is Literal:
        values = [f"`{v}`" for v in typing.get_args(tp)]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin is list:
        (inner,) = typing.get_args(tp)
        if _is_judge_union(inner):
            return "list of judge sections (a table per `method` below)"
        if typing.get_origin(inner) is typing.Annotated:  # the discriminated source union
            return "list of sources (a table per `type` below)"
        if _is_section(inner):
            return f"list of `{_section_title(inner)}` sections"
        return f"list of {_type_name(inner)}"
    if origin is dict:
        (_, value) = typing.get_args(tp) or (None, None)
        if _is_judge_union(value):
            return "mapping of task name to a judge section (a table per `method` below)"
        return "mapping"
    if _is_section(tp):
        return "section"
    return _SCALARS.get(tp, getattr(tp, "__name__", str(tp)))


def _section_title(model: type[BaseModel]) -> str:
    """The config key of a section class used as a list item (only `JudgeConfig` is, as judge.members)."""
    for name, field in RunConfig.model_fields.items():
        if field.annotation is model:
            return name
    return model.__name__


def _bounds(field: FieldInfo) -> str:
    """The field's numeric bounds as an interval or an inequality ('' when none)."""
    low = high = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"[{_number(item.ge)}"
        elif isinstance(item, annotated_types.Gt):
            low = f"({_number(item.gt)}"
        elif isinstance(item, annotated_types.Le):
            high = f"{_number(item.le)}]"
        elif isinstance(item, annotated_types.Lt):
            high = f"{_number(item.lt)})"
        elif isinstance(item, annotated_types.MinLen):
            return "non-empty"  # only names carry a length bound
    if low and high:
        return f"in {low}, {high}"
    if low:
        return ("≥ " if low[0] == "[" else "> ") + low[1:]
    if high:
        return ("≤ " if high[-1] == "]" else "< ") + high[:-1]
    return ""


def _registries() -> dict[str, list[str]]:
    """Keys whose string value must name a registered judge or task: their names are listed."""
    return {"judge.method": sorted(JUDGE_METHODS), "tasks.names": sorted(BUILTIN_TASKS)}


def _field_type(key: str, field: FieldInfo) -> str:
    text = _type_name(field.annotation)
    names = _registries().get(key)
    if names:
        text += ", each one of " if text.startswith("list") else ", one of "
        text += ", ".join(f"`{n}`" for n in names)
    bounds = _bounds(field)
    if not bounds:
        return text
    if bounds == "non-empty":
        return f"non-empty {text}"
    if text.endswith(" or null"):
        return f"{text.removesuffix(' or null')} {bounds}, or null"
    return f"{text} {bounds}"


def _yaml(value: Any) -> str:
    """A value as it would be written in the YAML config, on one line."""
    dumped = yaml.safe_dump({"v": value}, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return dumped.removeprefix("{v: ").removesuffix("}")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    return f"`{_yaml(field.get_default(call_default_factory=True))}`"


def _row(key: str, type_text: str, default: str, description: str) -> str:
    return f"| `{key}` | {_cell(type_text)} | {_cell(default)} | {_cell(description)} |"


def _field_row(key: str, field: FieldInfo) -> str:
    return _row(key, _field_type(key, field), _default(field), field.description or "")


_HEADER = ["| key | type | default | description |", "|---|---|---|---|"]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


class _Page:
    def __init__(self) -> None:
        self.headings: list[tuple[int, str]] = []  # (level, text) for the contents
        self.body: list[str] = []

    def section(self, level: int, heading: str, intro: str, rows: list[str]) -> None:
        self.headings.append((level, heading))
        self.body += ["", f"{'#' * level} {heading}", ""]
        if intro:
            self.body += [intro, ""]
        self.body += _HEADER + rows


def _walk(page: _Page, model: type[BaseModel], prefix: str, heading: str, intro: str) -> None:
    """One table for `model`'s own keys, then one section per nested section, depth first."""
    rows, nested = [], []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "judge":
            nested.append((key, field))
            continue
        if _is_section(field.annotation):
            nested.append((key, field))
            continue
        rows.append(_field_row(key, field))
    page.section(2 if prefix.count(".") <= 1 else 3, heading, intro, rows)
    if model is TasksConfig:
        for source in source_types():
            _source_section(page, source, f"{prefix}sources[]")
    for key, field in nested:
        if key == "judge":
            _judge_sections(page, field.description or "")
            continue
        _walk(page, field.annotation, f"{key}.", f"`{key}`", field.description or "")


def _judge_sections(page: _Page, intro: str) -> None:
    """The judge union: the keys every method has, the server section, then one table per method."""
    rows = [_field_row(f"judge.{name}", field) for name, field in JudgeBase.model_fields.items() if name != "server"]
    rows[0] = _row("judge.method", _field_type("judge.method", JudgeBase.model_fields["method"]), "`direct`",
                   "Selects the judge method; the keys of the other methods are refused.")
    rows += [_field_row(f"judge.{name}", field) for name, field in RunJudgeFields.model_fields.items()]
    extra = (" These keys apply to every method; `tasks` and `max_failed_share` only to the run's own judge "
             "section, not to ensemble members or per-task judges.")
    page.section(2, "`judge`", intro + extra, rows)
    server = [_field_row(f"judge.server.{n}", f) for n, f in JudgeServerConfig.model_fields.items()]
    page.section(3, "`judge.server`", JudgeBase.model_fields["server"].description or "", server)
    for cls in METHOD_CLASSES:
        method = cls.model_fields["method"].default
        own = [(n, f) for n, f in cls.model_fields.items() if n not in JudgeBase.model_fields]
        rows = [_row("judge.method", f"`{method}`", "`direct`" if method == "direct" else "required",
                     cls.model_fields["method"].description or "")]
        rows += [_field_row(f"judge.{n}", f) for n, f in own]
        page.section(3, f"`judge`: `method: {method}`", f"{cls.__doc__ or ''} Only these keys besides the common ones.", rows)


def _source_section(page: _Page, source: type[BaseModel], prefix: str) -> None:
    """One source type of the `tasks.sources` union: its discriminator first, then its fields."""
    tag = typing.get_args(source.model_fields["type"].annotation)[0]
    rows = [_row(f"{prefix}.type", f"`{tag}`", "required", "Selects this source type.")]
    for name, field in source.model_fields.items():
        if name != "type":
            rows.append(_field_row(f"{prefix}.{name}", field))
    intro = f"An entry of `tasks.sources` with `type: {tag}`; see [TASKS.md](TASKS.md)."
    page.section(3, f"`tasks.sources`: `type: {tag}`", intro, rows)


def reference_markdown() -> str:
    """The configuration reference page (Markdown), generated from `RunConfig`'s fields and help texts."""
    page = _Page()
    _walk(page, RunConfig, "", "Top level", "Keys at the top of the file.")
    contents = [f"{'  ' * (level - 2)}- [{text}](#{_anchor(text)})" for level, text in page.headings]
    head = [
        "# Configuration reference",
        "",
        f"*Generated from the help texts in `src/autodidact/config/` by `{REGENERATE}`; do not edit by hand.*",
        "",
        "Every key a run config accepts. Write them in a YAML file (`autodidact init FILE` writes one with every",
        "key, its default and its help text as a comment) or override any of them on the command line with",
        "`--set key=value` (the value is read as YAML, e.g. `--set judge.criteria=[correct,concise]`). An unknown",
        "key is an error, not ignored. A key left out takes the default shown here. Lists of sections",
        "(`tasks.sources`, `judge.members`) are written in YAML; `[]` after a key marks a field of each entry.",
        "`--set` reaches an entry by its index: `--set tasks.sources.0.path=other.jsonl` changes the first source",
        "of the config file. A config file holds one YAML document of at most 1 MB, each key once; its aliases",
        "(`*name`) may stand for at most 100,000 values in all. Numbers are never written as true or false.",
        "",
        *contents,
    ]
    return "\n".join(head + page.body) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
