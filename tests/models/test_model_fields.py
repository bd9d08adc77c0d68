"""A model spec's errors name the key or argument that gave it (judge.model, a reference judge), not model.name."""

from __future__ import annotations

import json

import pytest

from autodidact.errors import AutodidactError
from autodidact.models import load_model, resolve_model


@pytest.mark.parametrize("field", ["model.name", "judge.model", "the MODEL argument of `autodidact eval`"])
def test_every_resolve_error_names_the_field(tmp_path, field):
    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "nope"): (
            f"model: '{tmp_path}/nope' is not 'default', a model directory, a .gguf file or a hub id. Fix {field}."
        ),
        str(tmp_path / "nope.gguf"): f"model: GGUF file '{tmp_path}/nope.gguf' not found. Check the path in {field}.",
        str(tmp_path / "empty"): (
            f"model: directory '{tmp_path}/empty' has no config.json; point {field} at a Hugging Face checkpoint."
        ),
    }
    for spec, expected in cases.items():
        with pytest.raises(AutodidactError) as err:
            resolve_model(spec, field)
        assert str(err.value) == expected


def test_a_load_error_names_the_field(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": "x"}))
    with pytest.raises(AutodidactError) as err:
        load_model(str(bad), field="judge.model")
    assert str(err.value).startswith(f"model: could not load '{bad}' (judge.model): ")


def test_a_bad_judge_model_and_reference_judge_name_their_own_keys(tmp_path):
    from autodidact.config import load_config
    from autodidact.judges.external import judge_engine

    config = load_config(None, [f"judge.model={tmp_path}/no-judge"])
    with pytest.raises(AutodidactError) as err:
        judge_engine(config, policy_engine=None)
    assert str(err.value).endswith("Fix judge.model.") and "model.name" not in str(err.value)

    from autodidact.loop.context import _reference_judge

    config = load_config(None, [f"monitors.reward_hacking.reference_judge={tmp_path}/no-reference"])
    with pytest.raises(AutodidactError) as err:
        _reference_judge(config, lambda member: judge_engine(config.model_copy(update={"judge": member}), None))
    assert str(err.value).endswith("Fix monitors.reward_hacking.reference_judge.")
