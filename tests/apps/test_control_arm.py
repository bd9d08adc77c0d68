"""The judged arm against its control arm: paired per prompt, per iteration, per task, over seeds."""

from __future__ import annotations

import math

import pytest

from autodidact.apps.control import markdown, over_control, paired_cell


def verdicts(arith: list[float], instr: list[float]) -> dict:
    cells = {"arithmetic": dict(enumerate(arith)), "instructions": dict(enumerate(instr))}
    return {"heldout": {0: {t: {str(k): v for k, v in c.items()} for t, c in cells.items()}, 1: {
        t: {str(k): v for k, v in c.items()} for t, c in cells.items()
    }}}


def test_paired_cell_is_the_mean_difference_and_its_variance():
    mean, var = paired_cell({"a": 1, "b": 1, "c": 0, "d": 0}, {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1})
    assert mean == 0.0  # d = 1, 0, 0, -1 over the 4 prompts both graded
    assert var == pytest.approx((1 + 0 + 0 + 1) / 3 / 4)
    assert paired_cell({"a": 1}, {"a": 0}) is None  # one prompt says nothing about spread


def test_over_control_pools_seeds_and_tasks_and_keeps_iterations_both_reached():
    judged = {0: verdicts([1, 1, 0, 0], [1, 0, 1, 0]), 1: verdicts([1, 1, 1, 1], [0, 0, 0, 0])}
    control = {0: verdicts([0, 0, 0, 0], [1, 0, 1, 0]), 1: verdicts([1, 1, 0, 0], [0, 0, 0, 0]), 2: verdicts([0], [0])}
    del control[1]["heldout"][1]  # seed 1's control arm has not evaluated iteration 1 yet
    result = over_control(judged, control)
    assert result["seeds"] == [0, 1]
    assert sorted(result["by_iteration"]) == [0]  # only iterations every counted seed reached in both arms
    r = result["by_iteration"][0]
    # cells: seed 0 arithmetic +0.5 (var 1/3/4), instructions 0 (var 0); seed 1 arithmetic +0.5, instructions 0
    assert r["all"]["gain"] == pytest.approx(0.25) and r["all"]["cells"] == 4
    half = 1.96 * math.sqrt(2 * (0.25 * 4 / 3) / 4) / 4
    assert (r["all"]["low"], r["all"]["high"]) == pytest.approx((0.25 - half, 0.25 + half))
    assert r["tasks"]["arithmetic"]["gain"] == pytest.approx(0.5) and r["tasks"]["instructions"]["gain"] == 0.0
    assert over_control(judged, {}) is None


def test_markdown_leaves_out_the_base_iteration():
    same = {0: verdicts([1, 0], [0, 1])}
    table = markdown({"route_big": over_control(same, same), "other": None}, "heldout")
    assert table.count("| route_big |") == 1  # iteration 1 only: the base model is the same in both arms
    assert "\n| route_big | 0 | 1 | +0.0 [+0.0, +0.0] |" in table and "other" not in table
