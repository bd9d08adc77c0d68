"""Property-based tests of the parsers that take user input: `--set` overrides, config dicts, prompt files.

Whatever the input, the only exception a parser may raise is `AutodidactError` (the CLI turns it into
one line and exit code 2); anything else is a traceback for the user. Each property also checks what a
good input gives back. Inputs that once broke a parser are explicit examples, so they are tried
every time, not only when Hypothesis finds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from autodidact.config import FileSourceConfig, LogsSourceConfig, RunConfig, parse_overrides, validate_config
from autodidact.errors import AutodidactError
from autodidact.records import Prompt
from autodidact.tasks.files import FileTask
from autodidact.tasks.logs import LogsTask

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# --- --set overrides -----------------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
dotted_keys = st.lists(identifiers, min_size=1, max_size=4).map(".".join)
# YAML that a user may well type: odd scalars, tags, aliases, broken flow collections.
tricky_yaml = st.sampled_from(
    [
        "~",
        "null",
        "yes",
        "off",
        ".nan",
        "-.inf",
        "0o17",
        "0x1F",
        "1_000",
        "1:20",
        "2001-12-14t21:59:43.10-05:00",
        "!!binary x",
        "!!python/object:os.system",
        "&a [*a]",
        "*undefined",
        "[1, 2",
        "{a: 1",
        "'unclosed",
        "- a\n- b",
        "a: b: c",
        "\t",
        "%YAML 1.1",
    ]
)
# ... and YAML that PyYAML fails on with ValueError or RecursionError instead of a YAMLError.
unconstructable_yaml = st.sampled_from(["2020-13-45", "!!float abc", "!!int abc", "[" * 2000, "1" * 5000])
override_values = st.one_of(st.text(), tricky_yaml)
override_items = st.one_of(
    st.text(),  # anything at all, '=' or not
    st.builds(lambda key, value: f"{key}={value}", dotted_keys, override_values),
)


@given(st.lists(override_items, max_size=4))
@PROPERTY
def test_parse_overrides_raises_only_autodidact_error(items):
    try:
        parsed = parse_overrides(items)
    except AutodidactError:
        return
    assert isinstance(parsed, dict)


@given(st.lists(st.builds(lambda key, value: f"{key}={value}", dotted_keys, unconstructable_yaml), max_size=3))
@example(["seed=2020-13-45"])
@example(["tasks.names=" + "[" * 2000])
@PROPERTY
def test_parse_overrides_survives_yaml_that_pyyaml_cannot_construct(items):
    try:
        parse_overrides(items)
    except AutodidactError:
        pass


# Scalars as a user writes them on the command line, and what they must come back as.
scalars = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_\-/ ]{0,20}[A-Za-z0-9]", fullmatch=True),
)


def yaml_text(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


@given(st.dictionaries(dotted_keys, scalars, min_size=1, max_size=4))
@PROPERTY
def test_parse_overrides_round_trips_scalars(assignments):
    # Only keys where none is a prefix section of another: "a=1" then "a.b=2" is an error by design.
    keys = list(assignments)
    if any(other.startswith(key + ".") for key in keys for other in keys):
        return
    parsed = parse_overrides([f"{key}={yaml_text(value)}" for key, value in assignments.items()])
    for key, value in assignments.items():
        node = parsed
        for part in key.split("."):
            node = node[part]
        assert node == value and type(node) is type(value)


# --- config dicts ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Fields whose validation imports user code ('package.module:function'): random text could name a real
# module, and importing one (`this`, `antigravity`) has side effects. Their parsing has its own tests.
IMPORTING = {"program", "extractor"}


def section_dicts(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict]:
    """Dicts shaped like `model`: known fields (nested sections too) with odd values, and unknown keys."""
    fields = [name for name in model.model_fields if name not in IMPORTING]
    values = {}
    for name in fields:
        annotation = model.model_fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and depth < 2:
            values[name] = st.one_of(section_dicts(annotation, depth + 1), json_values)
        else:
            values[name] = json_values
    known = st.sampled_from(fields).flatmap(lambda name: st.tuples(st.just(name), values[name]))
    unknown = st.tuples(st.text(max_size=8), json_values)
    return st.lists(st.one_of(known, known, unknown), max_size=5).map(dict)


source_dicts = st.fixed_dictionaries(
    {"type": st.sampled_from(["file", "logs", "documents", "self_instruct", "database"])},
    optional={
        "name": st.text(max_size=10),
        "path": st.text(max_size=10),
        "weight": json_values,
        "max_bad_rows": json_values,
        "chunk_chars": json_values,
        "seeds": json_values,
    },
)
config_dicts = st.one_of(
    section_dicts(RunConfig),
    st.builds(
        lambda d, sources: {**d, "tasks": {"sources": sources}},
        section_dicts(RunConfig),
        st.lists(source_dicts, max_size=3),
    ),
)


def has_line_break(value) -> bool:
    """Whether any string in `value` (keys included) would split a line: \\n, \\r, \\x0b, \\u2028..."""
    if isinstance(value, str):
        return len(f"a{value}a".splitlines()) > 1
    if isinstance(value, dict):
        return any(has_line_break(k) or has_line_break(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_line_break(v) for v in value)
    return False


@given(config_dicts)
@PROPERTY
def test_validate_config_raises_only_a_one_line_autodidact_error(data):
    try:
        config = validate_config(data)
    except AutodidactError as err:
        message = str(err)
        assert message.startswith("config: ") and message.strip()
        if not has_line_break(data):  # names with line breaks: the test below
            assert len(message.splitlines()) == 1, message
        event("refused")
        return
    event("valid")
    assert isinstance(config, RunConfig)


@given(config_dicts.filter(has_line_break))
@example({"\n": None})
@example({"judge": {"method": "dir\nect"}})
@example({"tasks": {"names": ["arith\nmetic"]}})
@PROPERTY
def test_config_errors_stay_on_one_line_when_names_hold_line_breaks(data):
    try:
        validate_config(data)
    except AutodidactError as err:
        assert len(str(err).splitlines()) == 1, str(err)


# --- prompt files -----------------------------------------------------------------------------------------

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)  # surrogates included
good_rows = st.one_of(
    st.fixed_dictionaries(
        {"prompt": st.text(min_size=1, max_size=20)},
        optional={"id": st.integers(0, 5) | st.text(max_size=3), "reference": json_values},
    ),
    st.fixed_dictionaries(
        {
            "messages": st.tuples(
                st.lists(
                    st.fixed_dictionaries(
                        {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=10)}
                    ),
                    max_size=2,
                ),
                st.text(min_size=1, max_size=20),
            ).map(lambda turns: [*turns[0], {"role": "user", "content": turns[1]}])
        }
    ),
)
json_rows = st.one_of(
    good_rows,
    good_rows,
    json_values,
    st.fixed_dictionaries({"prompt": st.one_of(any_text, json_values)}, optional={"id": json_values}),
    st.fixed_dictionaries({"messages": json_values}),
    st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "assistant", "bot"]), "content": st.one_of(any_text, json_values)}
                ),
                max_size=3,
            )
        }
    ),
)
jsonl_lines = st.one_of(
    json_rows.map(lambda row: json.dumps(row).encode()),  # "\ud800" escapes for lone surrogates
    json_rows.map(lambda row: json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    any_text.map(lambda text: text.encode("utf-8", "surrogatepass")),  # not JSON, maybe not UTF-8
    st.binary(max_size=30),
)
jsonl_files = st.lists(jsonl_lines, max_size=8).map(
    lambda lines: b"\n".join(line.replace(b"\n", b" ") for line in lines)
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Where each example's file is written (module-scoped: Hypothesis reruns the test body, not the fixture)."""
    return tmp_path_factory.mktemp("property-files")


def write(folder: Path, content: bytes, name: str) -> str:
    path = folder / name
    path.write_bytes(content)
    return str(path)


def rows_in(content: bytes) -> int:
    """Rows as the reader counts them: non-blank lines (a leading byte-order mark is not content)."""
    return sum(1 for line in content.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip())


@given(jsonl_files, st.sampled_from([None, "id"]))
@example(b'{"prompt": "a lone \\ud800 surrogate"}\n{"prompt": "fine"}', None)
@example(b'{"prompt": ' + b"1" * 5000 + b"}\n" + b"[" * 100_000 + b"\n", None)
@PROPERTY
def test_file_source_reads_any_bytes_into_prompts_or_one_error(folder, content, id_field):
    path = write(folder, content, "prompts.jsonl")
    task = FileTask(FileSourceConfig(name="data", path=path, id_field=id_field, max_bad_rows=1000, heldout_ratio=0.2))
    try:
        train, heldout = task.build(10, 5, seed=0)
    except AutodidactError as err:
        assert len(str(err).splitlines()) == 1, str(err)
        event("refused")
        return
    event("read: some rows skipped" if task.skipped else "read: every row a prompt")
    for prompt in train + heldout:
        assert isinstance(prompt, Prompt)
        assert isinstance(prompt.text, str) and prompt.text.strip()
        prompt.text.encode("utf-8")  # no lone surrogate reaches the tokenizer or the store
        assert prompt.id.startswith("data-")
    assert len({p.id for p in train + heldout}) == len(train) + len(heldout)
    # Every row is a prompt or a counted bad row; none is lost without a word.
    assert len(train) + len(heldout) + len(task.skipped) == rows_in(content)


@given(jsonl_files)
@PROPERTY
def test_logs_source_reads_any_bytes_into_prompts_or_one_error(folder, content):
    path = write(folder, content, "logs.jsonl")
    task = LogsTask(LogsSourceConfig(name="chats", path=path, max_bad_rows=1000))
    try:
        train, heldout = task.build(10, 5, seed=0)
    except AutodidactError as err:
        assert len(str(err).splitlines()) == 1, str(err)
        event("refused")
        return
    event("read: some rows skipped" if task.skipped else "read: every row a prompt")
    for prompt in train + heldout:
        assert prompt.text.strip() and prompt.messages[-1]["role"] == "user"
        json.dumps(prompt.messages, ensure_ascii=False).encode("utf-8")
    assert len(train) + len(heldout) + len(task.skipped) == rows_in(content)
