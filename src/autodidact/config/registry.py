"""The names config accepts, as strings: config checks names here and never imports the
components that implement them. Each component's own map (`JUDGES`, `TASKS`, `EXTRACTORS`,
`BUILTINS`) must have exactly these keys; tests/config/test_leaf.py asserts it."""

from __future__ import annotations

JUDGE_METHODS = (
    "direct", "rubric", "pairwise", "contrastive", "self_consistency", "ensemble", "verifier", "program", "random",
    "self_certainty", "reverse_likelihood", "semantic_agreement", "self_examples",
)
BUILTIN_TASKS = ("arithmetic", "instructions")
EXTRACTORS = ("last_number", "boxed", "final_line", "answer_tag")
PROGRAM_BUILTINS = ("exact_match", "number_match", "regex", "json_keys", "python_tests")


def is_dotted_path(spec: str) -> bool:
    """Whether `spec` has the shape 'package.module:function' (whether it imports is checked where it is used)."""
    module, sep, attr = spec.partition(":")
    return bool(sep and module.strip() and attr.strip())


__all__ = ["BUILTIN_TASKS", "EXTRACTORS", "JUDGE_METHODS", "PROGRAM_BUILTINS", "is_dotted_path"]
