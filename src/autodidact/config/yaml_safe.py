"""YAML from a file someone hands us: bounded in size and in alias expansion, duplicate keys refused.

PyYAML's `safe_load` is safe from code execution, not from size: ten lines of nested aliases
("billion laughs") compose into a graph of a few dozen nodes that expands to 10**9 values once
anything walks it (pydantic validating a list, an error message echoing it, `to_yaml` saving
it), which exhausts memory while ignoring Ctrl-C. `ConfigLoader` counts the nodes of each
document with every alias expanded, on the composed graph (linear in its size, before any
Python object is built), and refuses past `MAX_NODES`. It also refuses a key given twice in one
mapping, which `safe_load` silently resolves to the last one.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # a config is a page of settings; prompts belong in a source file
# Expanded nodes per document. The largest shipped config has about 300; aliases that stand for
# a few hundred values are fine, ones that stand for millions are an attack or a mistake.
MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLBombError(yaml.YAMLError):
    """A document whose aliases expand past `MAX_NODES` nodes, or refer to themselves."""

    def __init__(self, nodes: int | None, aliased: bool = True) -> None:
        self.nodes = nodes  # None: an alias inside its own anchor (an endless structure)
        if nodes is None:
            text = "an alias (*name) inside its own anchor (&name) makes an endless value; remove that alias"
        elif aliased:
            text = f"aliases (*name) expand it to more than {MAX_NODES:,} values; use fewer aliases"
        else:  # as many values written out: not a config (a data set pasted in?)
            text = f"it holds more than {MAX_NODES:,} values; check that it is the right file"
        super().__init__(text)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that gives one key twice; `lines` are 1-based."""

    def __init__(self, key: Any, lines: tuple[int, int]) -> None:
        self.key, self.lines = key, lines
        super().__init__(f"key {key!r} appears twice (lines {lines[0]} and {lines[1]})")


def expanded_size(root: Node, limit: int = MAX_NODES) -> int:
    """Nodes under `root` with every alias expanded (stops counting past `limit`).

    Iterative, and memoized per node: a graph of n nodes costs O(n) however much it expands.

    Raises:
        YAMLBombError: past `limit`, or a node that contains itself.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            open_nodes.discard(key)
            if total > limit:
                raise YAMLBombError(total, aliased=len(sizes) < limit)
            sizes[key] = total
        elif key not in sizes:
            if key in open_nodes:
                raise YAMLBombError(None)
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class ConfigLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with the expansion bound and duplicate keys refused."""

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            expanded_size(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:  # the keys as written: a merged (<<) key may be overridden
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, (seen[key], line))
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """The one document in `text`, parsed like `yaml.safe_load` within the bounds above.

    Raises:
        YAMLBombError, DuplicateKeyError: see above (both are `yaml.YAMLError`s).
        yaml.YAMLError: invalid YAML, or more than one document.
    """
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (ConfigLoader is a SafeLoader)


__all__ = ["MAX_BYTES", "MAX_NODES", "ConfigLoader", "DuplicateKeyError", "YAMLBombError", "expanded_size", "load_yaml"]
