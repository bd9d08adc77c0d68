"""`--set a.b=c` overrides: parsed as YAML (within the bounds of `yaml_safe`), merged over the file.

A list entry is set by its index, `--set tasks.sources.0.path=x`: the index refers to the list in
the config file (or an earlier `--set` of the whole list, or the field's default), and one that
is out of range is an error naming the list's length. In the parsed overrides an index is an
`int` key, told apart from a mapping's keys (always strings) until the merge meets the list.
"""

from __future__ import annotations

from typing import Any

import yaml

from autodidact.config.yaml_safe import DuplicateKeyError, YAMLBombError, load_yaml
from autodidact.errors import AutodidactError

_MAX_FLOW_DEPTH = 500  # PyYAML composes a level of [ or { in 2 stack frames: deeper always exceeds 1000
_SOURCES_EXAMPLE = "--set 'tasks.sources=[{type: file, name: data, path: prompts.jsonl}]'"


def _key(part: str) -> str | int:
    """A dotted key's part: an `int` for a list index (ASCII digits only; 5000 digits would overflow `int()`)."""
    return int(part) if part.isascii() and part.isdigit() and len(part) <= 18 else part


def _whole_list_hint(dotted: str) -> str:
    return _SOURCES_EXAMPLE if dotted == "tasks.sources" else f"--set '{dotted}=[...]'"


def _index(items: list[Any], index: int, dotted: str, where: str) -> None:
    if index >= len(items):
        have = f"{len(items)} entries (0 to {len(items) - 1})"
        have = {0: "no entries", 1: "1 entry (index 0)"}.get(len(items), have)
        raise AutodidactError(
            f"--set {dotted}.{index}: {dotted} has {have}{where}; use an index in range, or set the whole "
            f"list with {_whole_list_hint(dotted)}."
        )


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = [_key(part) for part in dotted.split(".")]
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        if isinstance(node, list):  # a list given whole by an earlier --set: index into it
            prefix = ".".join(map(str, keys[:depth]))
            if not isinstance(key, int):
                raise AutodidactError(f"--set {dotted}: '{prefix}' is a list; index it with 0, 1, ...")
            _index(node, key, prefix, " (as set by an earlier --set)")
            if not isinstance(node[key], (dict, list)):
                raise AutodidactError(f"--set {dotted}: '{prefix}.{key}' is a value, not a section.")
            node = node[key]
            continue
        child = node.setdefault(key, {})
        if not isinstance(child, (dict, list)):
            raise AutodidactError(f"--set {dotted}: '{key}' is a value, not a section.")
        node = child
    last = keys[-1]
    if isinstance(node, list):
        prefix = ".".join(map(str, keys[:-1]))
        if not isinstance(last, int):
            raise AutodidactError(f"--set {dotted}: '{prefix}' is a list; index it with 0, 1, ...")
        _index(node, last, prefix, " (as set by an earlier --set)")
    node[last] = value


def _nested_too_deep(raw: str) -> bool:
    """Whether unquoted `raw` opens more flow collections ([ or {) at once than PyYAML can parse."""
    if "'" in raw or '"' in raw:
        return False  # brackets inside quotes are text: leave it to the parser
    depth = deepest = 0
    for char in raw:
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    return deepest > _MAX_FLOW_DEPTH


def parse_value(key: str, raw: str) -> Any:
    """One override's value: YAML, or the text itself where it is not YAML (`--set name=a: b`).

    Raises:
        AutodidactError: aliases that expand past the bound, or a key given twice in a mapping.
    """
    try:
        if _nested_too_deep(raw):  # PyYAML would recurse to a RecursionError, ~1 s later: the same outcome
            raise RecursionError
        return load_yaml(raw) if raw.strip() else None
    except YAMLBombError as exc:
        raise AutodidactError(f"--set {key}: {exc}.") from None
    except DuplicateKeyError as exc:
        raise AutodidactError(f"--set {key}: {exc.key!r} appears twice in the value; remove one.") from None
    except (yaml.YAMLError, ValueError, RecursionError):
        # PyYAML raises ValueError for an impossible date and RecursionError for deep
        # nesting; like a syntax error, the text is kept as a plain string.
        return raw


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn `["a.b=3", "c=[x, y]"]` into a nested dict; values are parsed as YAML, list indices become ints."""
    data: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AutodidactError(f"--set '{item}': expected key=value, e.g. --set stopping.max_iterations=2.")
        _set_path(data, key.strip(), parse_value(key.strip(), raw))
    return data


def merge_overrides(
    base: dict[str, Any], extra: dict[str, Any], defaults: Any = None, path: str = ""
) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key, list entries by index.

    An empty mapping in `extra` empties the key (`--set judge.tasks={}`), since merging it would
    change nothing. `defaults` (the same shape as `base`) supplies a list that `base` leaves out.
    """
    out = dict(base)
    for key, value in extra.items():
        key = str(key)  # an int key under a mapping is a name made of digits, not an index
        dotted = f"{path}.{key}" if path else key
        default = defaults.get(key) if isinstance(defaults, dict) else None
        current = out.get(key, default if _is_index_map(value) else None)
        if _is_index_map(value):
            out[key] = _merge_list(current, value, default, dotted)
        elif isinstance(value, dict) and value and isinstance(out.get(key, default), list):
            raise AutodidactError(f"--set {dotted}.{next(iter(value))}: {dotted} is a list; index it with 0, 1, ...")
        elif isinstance(value, dict) and value and (isinstance(current, dict) or key not in out):
            # into the file's section, or a new one (where an index deeper down refers to a default list)
            out[key] = merge_overrides(current if isinstance(current, dict) else {}, value, default, dotted)
        else:
            out[key] = value
    return out


def _is_index_map(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and any(isinstance(k, int) for k in value)


def _merge_list(current: Any, entries: dict[Any, Any], defaults: Any, dotted: str) -> Any:
    """The list at `dotted` with `entries` (index -> value) merged into a copy."""
    if isinstance(current, dict):  # a mapping whose keys are digits (a task named '0')
        return merge_overrides(current, entries, defaults, dotted)
    if current is not None and not isinstance(current, list):
        raise AutodidactError(
            f"--set {dotted}.{next(iter(entries))}: '{dotted}' is a value, not a list; set it with --set {dotted}=..."
        )
    if current is None:
        raise AutodidactError(
            f"--set {dotted}.{next(iter(entries))}: {dotted} is not a list in the config; set it whole with "
            f"{_whole_list_hint(dotted)}."
        )
    out = list(current)
    for index, value in entries.items():
        if not isinstance(index, int):
            raise AutodidactError(f"--set {dotted}.{index}: {dotted} is a list; index it with 0, 1, ...")
        _index(out, index, dotted, " in the config")
        item_defaults = defaults[index] if isinstance(defaults, list) and index < len(defaults) else None
        if isinstance(value, dict) and value and isinstance(out[index], dict):
            out[index] = merge_overrides(out[index], value, item_defaults, f"{dotted}.{index}")
        else:
            out[index] = value
    return out


__all__ = ["merge_overrides", "parse_overrides", "parse_value"]
