"""Config: one-line errors naming the field and the fix; overrides; the example file."""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel

from autodidact.config import RunConfig, example_yaml, load_config, parse_overrides
from autodidact.errors import AutodidactError


def test_defaults_validate():
    config = load_config()
    assert config.model.name == "default" and config.stopping.max_iterations == 3


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["trainingg.lr=1"], "unknown key 'trainingg'"),
        (["training.lr=1"], "unknown key 'training.lr'"),
        (["training.batch_size=abc"], "training.batch_size"),
        (["generation.samples_per_prompt=-2"], "generation.samples_per_prompt"),
        (["judge.method=directt"], "unknown judge 'directt'. Choose one of: contrastive, direct, ensemble, pairwise, program, random, reverse_likelihood, rubric, self_certainty, self_consistency, self_examples, semantic_agreement, verifier."),
        (["judge.method=directt"], "Did you mean 'direct'?"),
        (["tasks.names=[arithmetik]"], "unknown task 'arithmetik'"),
        (["tasks.prompts_per_iteration=500"], "exceeds tasks.train_size"),
        (["noequals"], "expected key=value"),
    ],
)
def test_bad_values_give_one_line_errors(overrides, expected):
    with pytest.raises(AutodidactError) as err:
        load_config(None, overrides)
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(AutodidactError, match="not found. Create one with `autodidact init"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(AutodidactError, match="not valid YAML"):
        load_config(broken)


def test_overrides_parse_yaml_values_and_merge_with_file(tmp_path):
    assert parse_overrides(["a.b=3", "c=[x, y]", "d=true"]) == {"a": {"b": 3}, "c": ["x", "y"], "d": True}
    path = tmp_path / "c.yaml"
    path.write_text("stopping:\n  max_iterations: 5\n  patience: 4\n")
    config = load_config(path, ["stopping.max_iterations=2"])
    assert (config.stopping.max_iterations, config.stopping.patience) == (2, 4)


def test_an_empty_mapping_override_empties_the_files_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("judge:\n  tasks:\n    arithmetic: {method: self_consistency}\n")
    assert set(load_config(path).judge.tasks) == {"arithmetic"}
    assert set(load_config(path, ["judge.tasks.instructions={method: rubric}"]).judge.tasks) == {"arithmetic", "instructions"}
    assert load_config(path, ["judge.tasks={}"]).judge.tasks == {}


def test_example_yaml_lists_every_option_with_a_comment_and_loads_back():
    text = example_yaml()
    data = yaml.safe_load(text)
    assert RunConfig.model_validate(data) == RunConfig()

    comments = [line for line in text.splitlines() if line.strip().startswith("# ") and not line.startswith("# AutoDidact")]

    def count(model) -> int:  # one comment per field, and per field of every (nested) section
        return sum(1 + (count(value) if isinstance(value := getattr(model, n), BaseModel) else 0)
                   for n in type(model).model_fields)

    assert len(comments) == count(RunConfig())


def test_override_nested_deeper_than_pyyaml_can_parse_stays_text():
    deep, parsable = "[" * 501 + "]" * 501, "[" * 300 + "]" * 300
    assert parse_overrides([f"a={deep}"]) == {"a": deep}  # as after PyYAML's RecursionError (which it skips)
    value = parse_overrides([f"a={parsable}"])["a"]
    for _ in range(299):
        value = value[0]
    assert value == []
