"""Configs saved by runs begun before the judge union still load (resume, export, report read them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodidact.config import load_config, to_yaml
from autodidact.errors import AutodidactError

SAVED = Path(__file__).resolve().parents[1] / "data" / "saved_configs"  # written by to_yaml at 2339223


def test_every_old_saved_config_is_here():
    assert sorted(p.stem for p in SAVED.glob("*.yaml")) == ["default", "ensemble", "program", "routed", "server_judge"]


def test_old_default_config_loads_as_the_direct_judge():
    judge = load_config(SAVED / "default.yaml").judge
    assert (judge.method, judge.mode, judge.batch_size, judge.max_failed_share) == ("direct", "logprobs", 16, 0.5)
    assert "extractor" not in type(judge).model_fields  # another method's field was dropped, not carried


def test_old_routed_config_keeps_its_per_task_judge():
    judge = load_config(SAVED / "routed.yaml").judge
    route = judge.tasks["arithmetic"]
    assert (judge.method, route.method, route.consistency_score) == ("direct", "self_consistency", "share")


def test_old_ensemble_keeps_members_personas_and_combine():
    judge = load_config(SAVED / "ensemble.yaml").judge
    assert [m.method for m in judge.members] == ["direct", "rubric"]
    assert judge.members[1].criteria == ["correct"]
    assert (judge.personas, judge.combine) == (["You are strict."], "min")


def test_old_server_keys_move_under_server_with_their_saved_values():
    judge = load_config(SAVED / "server_judge.yaml").judge
    assert (judge.method, judge.model, judge.pairwise_schedule) == ("pairwise", "http://127.0.0.1:8000/v1", "cycle")
    server = judge.server
    assert (server.model_name, server.timeout, server.max_retries, server.concurrency) == ("judge", 30.0, 1, 8)


def test_old_program_config_keeps_its_program():
    judge = load_config(SAVED / "program.yaml").judge
    assert (judge.method, judge.program, judge.program_timeout) == ("program", "number_match", 5.0)


@pytest.mark.parametrize("name", ["default", "ensemble", "program", "routed", "server_judge"])
def test_upgraded_config_saves_and_loads_back_unchanged(name, tmp_path):
    config = load_config(SAVED / f"{name}.yaml")
    again = tmp_path / "config.yaml"
    again.write_text(to_yaml(config))
    assert load_config(again) == config


def test_one_stray_old_key_written_by_hand_is_still_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("judge:\n  method: direct\n  model_name: judge\n")
    with pytest.raises(AutodidactError, match=r"judge.model_name moved to judge.server.model_name"):
        load_config(path)
