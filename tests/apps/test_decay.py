"""After-run decay figures on a hand-made run store: right / kept and majority flips equal a count by hand."""

from __future__ import annotations

from typer.testing import CliRunner

from autodidact.apps.cli import app
from autodidact.apps.decay import FloorKept, KeptRight, decay_figures, decay_lines, floor_figures, right_by_floor
from autodidact.config import to_yaml, validate_config
from autodidact.loop import CONFIG_FILE, STORE_FILE
from autodidact.monitors.signal_decay import Flips
from autodidact.records import Judgment, Prompt, Sample, SFTExample
from autodidact.store import RunStore

REFERENCES = {"a": "4", "b": "7", "c": "9", "d": "3"}
# iteration -> prompt -> its samples' texts (the draw changes: c only in 1, d from 2 on), and the text selected.
SAMPLED = {
    1: {"a": ["4", "4", "5"], "b": ["7", "8", "8"], "c": ["1", "2"]},  # majorities 4 (right), 8 (wrong), 1 (wrong)
    2: {"a": ["5", "5", "4"], "b": ["7", "7", "8"], "d": ["3"]},  # 5 (wrong), 7 (right), 3 (right)
    3: {"a": ["no answer"], "d": ["2", "so 2", "3"]},  # no majority, 2 (wrong)
}
SELECTED = {1: {"a": "4", "b": "8"}, 2: {"a": "5", "b": "7", "d": "3"}, 3: {"d": "so 2"}}


def _run_dir(tmp_path):
    """A run directory whose store holds the draws above for arithmetic, and an instructions prompt never drawn."""
    config = validate_config({
        "tasks": {"names": ["arithmetic", "instructions"]},
        "judge": {"method": "direct", "tasks": {"arithmetic": {"method": "self_consistency", "consistency_score": "share"}}},
    })
    (tmp_path / CONFIG_FILE).write_text(to_yaml(config), encoding="utf-8")
    prompts = {k: Prompt(f"arithmetic-{k}", "arithmetic", "train", [{"role": "user", "content": k}], ref)
               for k, ref in REFERENCES.items()}
    prompts["i"] = Prompt("instructions-i", "instructions", "train", [{"role": "user", "content": "Say hi."}], None)
    with RunStore(tmp_path / STORE_FILE) as store, store.transaction():
        store.add_prompts(list(prompts.values()))
        for it in range(4):
            store.add_metrics(it, {"pass_rate": 0.5})
        for it, drawn in SAMPLED.items():
            samples = [Sample(f"it{it}-{k}-{i}", prompts[k].id, it, i, text, 1)
                       for k, texts in drawn.items() for i, text in enumerate(texts)]
            store.add_samples(samples)
            chosen = {(s.prompt_id, s.text): s.id for s in samples}
            store.add_selection(it, [SFTExample(chosen[(prompts[k].id, t)], prompts[k].id, prompts[k].messages, t, 5.0)
                                     for k, t in SELECTED[it].items()])
    return tmp_path


def test_kept_right_and_majority_flips_equal_a_count_by_hand(tmp_path):
    figures = decay_figures(_run_dir(tmp_path))

    assert figures.kept_right == {
        "arithmetic": [KeptRight(1, 1, 2), KeptRight(2, 2, 3), KeptRight(3, 0, 1)],
        "instructions": [KeptRight(1, 0, 0), KeptRight(2, 0, 0), KeptRight(3, 0, 0)],  # never drawn
    }
    # 1 -> 2: a (4 -> 5, right -> wrong) and b (8 -> 7, wrong -> right) were drawn both times; c and d were not.
    # 2 -> 3: a has no majority at 3, so only d (3 -> 2, right -> wrong) counts.
    assert figures.flips["arithmetic"] == [(2, Flips(2, 2, 1, 1)), (3, Flips(1, 1, 1, 0))]
    assert figures.flips["instructions"] == [(2, Flips(0, 0, 0, 0)), (3, Flips(0, 0, 0, 0))]
    assert figures.extractors == {"arithmetic": "last_number", "instructions": "last_number"}


def test_the_decay_command_prints_the_figures(tmp_path):
    run_dir = _run_dir(tmp_path)
    lines = decay_lines(decay_figures(run_dir), "r")
    assert lines[0] == "r arithmetic: right / kept 1 / 2, 2 / 3, 0 / 1"
    assert lines[2] == (
        "r arithmetic: majority flips (last_number) 1->2: 2 of 2 (right->wrong 1, wrong->right 1), "
        "2->3: 1 of 1 (right->wrong 1, wrong->right 0)"
    )

    result = CliRunner().invoke(app, ["decay", str(run_dir)], env={"COLUMNS": "300"})

    assert result.exit_code == 0, result.output
    assert "arithmetic: right / kept 1 / 2, 2 / 3, 0 / 1" in result.output


# Iteration 1's vote shares x 10 (sample "it1-PROMPT-INDEX" -> score); c's second sample failed to be judged.
SCORES = {"it1-a-0": 6.7, "it1-a-1": 6.7, "it1-a-2": 3.3, "it1-b-0": 3.3, "it1-b-1": 6.7, "it1-b-2": 6.7,
          "it1-c-0": 5.0, "it1-c-1": None}


def test_right_by_floor_counts_each_prompts_top_sample_against_each_floor(tmp_path):
    run_dir = _run_dir(tmp_path)
    with RunStore(run_dir / STORE_FILE) as store, store.transaction():
        store.add_judgments([Judgment(sid, "self_consistency", score) for sid, score in SCORES.items()])
    with RunStore(run_dir / STORE_FILE) as store:
        from autodidact.tasks import get_task

        by_floor = right_by_floor(store, {"arithmetic": get_task("arithmetic")}, [1, 2], [5.0, 6.5])

    # Top samples: a "4" (6.7, right), b "8" (the first 6.7, wrong), c "1" (5.0, wrong); iteration 2 has no scores.
    assert by_floor == {"arithmetic": [(1, [FloorKept(5.0, 1, 3), FloorKept(6.5, 1, 2)]),
                                       (2, [FloorKept(5.0, 0, 0), FloorKept(6.5, 0, 0)])]}
    lines = floor_figures(run_dir, [5.0, 6.5])
    assert lines[0] == "arithmetic: right / kept by floor, iteration 1: >= 5 1 / 3, >= 6.5 1 / 2"

    result = CliRunner().invoke(app, ["decay", str(run_dir), "--floors", "5,x"])
    assert result.exit_code == 2 and "expected numbers separated by commas" in result.output
