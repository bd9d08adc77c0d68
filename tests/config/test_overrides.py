"""`--set` into lists by index, strict numbers, bounded integers, and the overrides that errors suggest, run."""

from __future__ import annotations

import re

import pytest

from autodidact.config import load_config, parse_overrides
from autodidact.errors import AutodidactError


def error_of(path=None, overrides=()) -> str:
    with pytest.raises(AutodidactError) as err:
        load_config(path, list(overrides))
    return str(err.value)


def test_an_index_is_an_int_key_until_the_merge_meets_the_list():
    assert parse_overrides(["tasks.sources.0.path=x"]) == {"tasks": {"sources": {0: {"path": "x"}}}}


def test_set_an_entry_of_the_files_list_by_index(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  names: []\n  sources:\n    - {type: file, name: a, path: a.jsonl}\n"
                    "    - {type: file, name: b, path: b.jsonl, weight: 2}\n")
    config = load_config(path, ["tasks.sources.1.path=other.jsonl", "tasks.sources.0.heldout_ratio=0.5"])
    assert [(s.name, s.path, s.weight, s.heldout_ratio) for s in config.tasks.sources] == [
        ("a", "a.jsonl", 1.0, 0.5),
        ("b", "other.jsonl", 2.0, 0.1),
    ]


def test_set_an_entry_of_a_default_list_and_of_a_list_set_earlier():
    assert load_config(None, ["tasks.names.1=arithmetic", "tasks.names.0=instructions"]).tasks.names == [
        "instructions",
        "arithmetic",
    ]
    config = load_config(None, ["tasks.sources=[{type: file, name: d, path: x.jsonl}]", "tasks.sources.0.weight=3"])
    assert config.tasks.sources[0].weight == 3.0


def test_an_index_out_of_range_names_the_lists_length():
    assert error_of(None, ["tasks.names.2=arithmetic"]) == (
        "--set tasks.names.2: tasks.names has 2 entries (0 to 1) in the config; use an index in range, or set "
        "the whole list with --set 'tasks.names=[...]'."
    )


def test_digits_under_a_mapping_are_a_name_not_an_index():
    assert set(load_config(None, ["judge.tasks.0.method=rubric"]).judge.tasks) == {"0"}


@pytest.mark.parametrize(
    ("overrides", "field", "good"),
    [
        (["tasks.sources=[{type: file, name: d, path: x.jsonl, weight: 0}]"], "tasks.sources.0.weight", "2"),
        (["tasks.sources=[{type: documents, path: docs, chunk_chars: 5}]"], "tasks.sources.0.chunk_chars", "800"),
        (
            ["judge.method=ensemble", "judge.members=[{method: rubric, reasoning_tokens: 0}]"],
            "judge.members.0.reasoning_tokens",
            "64",
        ),
        (
            ["tasks.sources=[{type: file, name: d, path: x.jsonl}]", "tasks.sources.0.heldout_ratio=1"],
            "tasks.sources.0.heldout_ratio",
            "0.2",
        ),
    ],
)
def test_the_suggested_override_of_an_entry_works(overrides, field, good):
    message = error_of(None, overrides)
    suggested = re.search(r"--set (\S+)=\.\.\.$", message).group(1)
    assert suggested == field  # no union tag (tasks.sources.0.file.weight) in the key
    load_config(None, [*overrides, f"{suggested}={good}"])  # the suggestion, with a valid value, is accepted


def test_the_suggested_whole_list_for_sources_works():
    message = error_of(None, ["tasks.sources.0.path=x.jsonl"])
    assert "tasks.sources has no entries" in message
    suggested = re.search(r"--set '(tasks\.sources=.*)'", message).group(1)
    assert load_config(None, [suggested]).tasks.sources[0].path == "prompts.jsonl"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("stopping.max_iterations=true", "stopping.max_iterations"),
        ("generation.temperature=false", "generation.temperature"),
        ("selection.min_score=yes", "selection.min_score"),
        ("model.vllm.max_model_len=true", "model.vllm.max_model_len"),
        ("generation.temperature_schedule=[0.5, true]", "generation.temperature_schedule.1"),
        ("tasks.sources=[{type: file, name: d, path: x.jsonl, weight: true}]", "tasks.sources.0.weight"),
        ("judge.tasks={arithmetic: {batch_size: true}}", "judge.tasks.arithmetic.batch_size"),
    ],
)
def test_true_or_false_is_never_a_number(override, field):
    assert error_of(None, [override]).startswith(f"config: {field}: expected a number, not true/false")


def test_strings_and_bools_stay_what_they_were():
    config = load_config(None, ["seed='7'", "monitors.enabled=false", "judge.method=program", "judge.program=regex",
                                "judge.program_args={strict: true}"])
    assert (config.seed, config.monitors.enabled, config.judge.program_args) == (7, False, {"strict": True})


@pytest.mark.parametrize(
    ("override", "bound"),
    [
        ("seed=123456789012345678901234", 2**31 - 1),
        ("generation.batch_size=100000000", 65536),
        ("evaluation.max_new_tokens=100000", 8192),
        ("training.max_length=10000000", 1 << 20),
        ("judge.batch_size=100000000", 65536),
    ],
)
def test_integers_are_bounded_where_a_library_bounds_them(override, bound):
    assert f"less than or equal to {bound} " in error_of(None, [override])


def test_the_largest_seed_seeds_every_library_with_the_runs_offsets():
    import random

    import numpy as np
    import torch

    seed = load_config(None, [f"seed={2**31 - 1}"]).seed
    np.random.seed(seed + 1000)  # numpy's legacy seeding (transformers' set_seed) takes < 2**32
    torch.manual_seed(seed * 1000 + 1000)
    random.Random(seed * 1_000_003 + 1000)
