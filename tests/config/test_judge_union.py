"""The judge section is a union on `method`: each method's class holds only its own keys."""

from __future__ import annotations

import pytest
import yaml

from autodidact.config import load_config, to_yaml, validate_config
from autodidact.config.judge import RUN_CLASSES, JudgeBase, RunJudgeFields
from autodidact.config.judge_methods import METHOD_CLASSES
from autodidact.config.registry import JUDGE_METHODS
from autodidact.errors import AutodidactError

OWN_FIELDS = {
    cls.model_fields["method"].default: set(cls.model_fields) - set(JudgeBase.model_fields) for cls in METHOD_CLASSES
}
ALL_METHOD_FIELDS = sorted(set().union(*OWN_FIELDS.values()))
# The smallest valid section of each method.
MINIMAL = {
    "direct": {},
    "rubric": {"method": "rubric"},
    "pairwise": {"method": "pairwise"},
    "contrastive": {"method": "contrastive"},
    "self_consistency": {"method": "self_consistency"},
    "ensemble": {"method": "ensemble", "personas": ["You are terse."]},
    "verifier": {"method": "verifier"},
    "program": {"method": "program", "program": "exact_match"},
    "random": {"method": "random"},
    "self_certainty": {"method": "self_certainty"},
    "reverse_likelihood": {"method": "reverse_likelihood"},
    "semantic_agreement": {"method": "semantic_agreement"},
    "self_examples": {"method": "self_examples"},
}
FOREIGN = [(m, f) for m in JUDGE_METHODS for f in ALL_METHOD_FIELDS if f not in OWN_FIELDS[m]]


def test_every_method_has_a_class_and_the_cases_cover_them():
    assert sorted(OWN_FIELDS) == sorted(JUDGE_METHODS) == sorted(MINIMAL)
    assert [c.model_fields["method"].default for c in RUN_CLASSES] == list(JUDGE_METHODS)
    own_pairs = sum(len(fields) for fields in OWN_FIELDS.values())  # (method, own field) pairs
    # 19 fields: the 16 of the first nine methods, plus certainty, embedder (two methods' own) and shots.
    assert len(ALL_METHOD_FIELDS) == 19 and len(FOREIGN) == len(JUDGE_METHODS) * 19 - own_pairs == 13 * 19 - 24


@pytest.mark.parametrize(("method", "key"), FOREIGN)
def test_a_key_of_another_method_is_one_line_naming_its_method(method, key):
    owners = [m for m in JUDGE_METHODS if key in OWN_FIELDS[m]]
    with pytest.raises(AutodidactError) as err:
        validate_config({"judge": {**MINIMAL[method], key: None}})
    names = " or ".join(f"'{m}'" for m in owners)
    assert str(err.value) == (
        f"config: judge.{key} belongs to method {names}, not '{method}'; set judge.method={owners[0]} or remove it."
    )


def test_method_defaults_to_direct_and_nested_sections_name_their_path():
    assert validate_config({"judge": {"batch_size": 3}}).judge.method == "direct"
    with pytest.raises(AutodidactError, match=r"^config: judge\.tasks\.arithmetic\.combine belongs to method 'ensemble', "
                       r"not 'self_consistency'; set judge\.tasks\.arithmetic\.method=ensemble or remove it\.$"):
        load_config(None, ["judge.tasks={arithmetic: {method: self_consistency, combine: min}}"])
    with pytest.raises(AutodidactError, match=r"^config: judge\.members\.1\.extractor belongs to method 'self_consistency'"):
        load_config(None, ["judge.method=ensemble", "judge.members=[{method: direct}, {extractor: boxed}]"])


@pytest.mark.parametrize(
    ("old", "new"),
    [("model_name", "server.model_name"), ("api_key_env", "server.api_key_env"), ("tokenizer", "server.tokenizer"),
     ("server_timeout", "server.timeout"), ("server_max_retries", "server.max_retries"),
     ("server_concurrency", "server.concurrency"), ("server_top_logprobs", "server.top_logprobs")],
)
def test_the_old_flat_server_keys_name_where_they_moved(old, new):
    with pytest.raises(AutodidactError) as err:
        validate_config({"judge": {old: "x"}})
    assert str(err.value) == f"config: judge.{old} moved to judge.{new} (with a server URL in judge.model); set it there."


def test_one_server_section_with_one_set_of_defaults():
    config = validate_config({"judge": {"model": "http://127.0.0.1:1/v1", "server": {"model_name": "m"}}})
    judge, policy = config.judge.server, config.model.server
    shared = ("concurrency", "timeout", "max_retries", "top_logprobs")
    assert [getattr(judge, k) for k in shared] == [getattr(policy, k) for k in shared] == [8, 120.0, 3, 20]
    with pytest.raises(AutodidactError, match=r"^config: judge\.server: model is a server URL; set server\.model_name"):
        validate_config({"judge": {"model": "http://127.0.0.1:1/v1"}})
    with pytest.raises(AutodidactError, match=r"^config: judge\.server: tokenizer applies only when"):
        validate_config({"judge": {"server": {"tokenizer": "default"}}})


def test_a_pasted_key_is_refused_without_being_shown():
    with pytest.raises(AutodidactError) as err:
        validate_config({"judge": {"model": "http://h/v1", "server": {"model_name": "m", "api_key_env": "sk-SECRET9"}}})
    assert str(err.value).startswith("config: judge.server.api_key_env: give the name of an environment variable")
    assert "SECRET9" not in str(err.value)


@pytest.mark.parametrize("method", JUDGE_METHODS)
def test_a_saved_config_of_every_method_loads_back(method, tmp_path):
    config = validate_config({"judge": {**MINIMAL[method], "max_failed_share": 0.25}})
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(config), encoding="utf-8")
    again = load_config(saved)
    assert again == config and type(again.judge) is type(config.judge) and again.judge.max_failed_share == 0.25


def test_a_saved_routed_ensemble_loads_back(tmp_path):
    config = load_config(None, [
        "judge.method=ensemble",
        "judge.members=[{method: direct}, {method: pairwise, pairwise_k: 3}, {method: ensemble, personas: [a]}]",
        "judge.tasks={arithmetic: {method: self_consistency, consistency_score: share}, "
        "instructions: {method: rubric, model: 'http://h/v1', server: {model_name: m, timeout: 5}}}",
    ])
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(config), encoding="utf-8")
    again = load_config(saved)
    assert again == config
    assert again.judge.members[1].pairwise_k == 3 and again.judge.tasks["instructions"].server.timeout == 5.0
    assert "max_failed_share" not in yaml.safe_load(saved.read_text())["judge"]["tasks"]["arithmetic"]


def test_only_the_runs_own_section_has_tasks_and_a_failure_share():
    assert all(issubclass(c, RunJudgeFields) for c in RUN_CLASSES)
    assert not any(set(RunJudgeFields.model_fields) & set(c.model_fields) for c in METHOD_CLASSES)
