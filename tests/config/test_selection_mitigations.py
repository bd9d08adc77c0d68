"""The selection options against a decaying signal: a floor per iteration, and replaying the base model's examples."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from autodidact.config import SelectionConfig, load_config, to_yaml, validate_config
from autodidact.errors import AutodidactError


@pytest.mark.parametrize(
    ("schedule", "floors"),
    [
        ([5.0, 6.25, 7.5], [5.0, 6.25, 7.5, 7.5, 7.5]),  # rising, the last entry repeated
        ([7.5, 6.25, 5.0], [7.5, 6.25, 5.0, 5.0, 5.0]),  # a curriculum from confident to less confident prompts
        (None, [5.0] * 5),  # min_score when unset
    ],
)
def test_the_floor_of_each_iteration_comes_from_the_schedule(schedule, floors):
    selection = SelectionConfig(min_score=5.0, min_score_schedule=schedule)
    assert [selection.min_score_at(i) for i in range(1, 6)] == floors


def test_the_schedule_survives_the_saved_config_a_resumed_run_reads(tmp_path):
    config = validate_config({"selection": {"min_score_schedule": [5, 6.25, 7.5], "replay_base": True}})
    (tmp_path / "config.yaml").write_text(to_yaml(config), encoding="utf-8")
    saved = load_config(tmp_path / "config.yaml").selection
    assert saved.min_score_schedule == [5.0, 6.25, 7.5] and saved.min_score_at(2) == 6.25 and saved.replay_base


@pytest.mark.parametrize("schedule", [[], [5.0, 10.5], [-1.0]])
def test_a_schedule_needs_floors_between_0_and_10(schedule):
    with pytest.raises(ValidationError, match="min_score_schedule needs at least one floor, each between 0 and 10"):
        SelectionConfig(min_score_schedule=schedule)


def test_replay_base_needs_sft():
    with pytest.raises(AutodidactError, match="selection.replay_base adds iteration 1's SFT examples"):
        validate_config({"selection": {"replay_base": True}, "training": {"method": "dpo"}})
