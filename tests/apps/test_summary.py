"""The end-of-run tables: the paraphrased held-out column and the alerts, as the terminal shows them."""

from __future__ import annotations

from rich.console import Console

from autodidact.apps.summary import alerts_table, iteration_table
from autodidact.records import Alert


def _text(table) -> str:
    console = Console(width=220, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def _row(it: int, paraphrased: float | None) -> dict:
    task = {"pass_rate": 0.5, "pass_low": 0.25, "pass_high": 0.75}
    row = {"iteration": it, "tasks": {"arithmetic": task}, "pass_rate": 0.5, "judge_score": 6.0, "judge_auc": 0.55,
           "mean_tokens": 20.0, "kept": None}
    return row if paraphrased is None else row | {"paraphrase_pass_rate": paraphrased}


def test_iteration_table_shows_the_paraphrased_pass_rate_where_the_run_has_it():
    text = _text(iteration_table([_row(0, 0.25), _row(1, 0.375)], ["arithmetic"]))
    assert "paraphrased pass %" in text and "phrasings training never" in text
    header = next(line for line in text.splitlines() if "iter" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]][2:4] == ["mean pass %", "paraphrased pass %"]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    assert [row[2:4] for row in rows] == [["50.0", "25.0"], ["50.0", "37.5"]]
    # No such column for a run without the set (`autodidact eval`, a run begun before it, sources only).
    assert "paraphrased" not in _text(iteration_table([_row(0, None)], ["arithmetic"]))


def test_alerts_table_says_where_the_self_judge_is_unreliable():
    message = "the self-judge's held-out scores barely track correctness on arithmetic (AUC 0.52; 12 of 48 pass)"
    text = _text(alerts_table([Alert(0, "judge_reliability", message)]))
    assert "judge_reliability" in text and "barely track correctness on arithmetic" in text.replace("\n", " ")


def test_control_notes_name_the_tasks_trained_without_self_evaluation(tmp_path):
    from autodidact.apps.summary import control_notes, control_tasks, read_config

    routed = {"tasks": {"names": ["arithmetic", "instructions"]},
              "judge": {"method": "direct", "tasks": {"instructions": {"method": "random"}}}}  # fmt: skip
    assert control_tasks(routed) == ["instructions"]
    assert control_tasks({"tasks": {"names": ["a", "b"]}, "judge": {"method": "random"}}) == ["a", "b"]
    assert control_tasks({"tasks": {"names": ["a"]}, "judge": {}}) == []  # direct by default
    assert control_tasks({}) == [] and control_tasks({"judge": "junk", "tasks": 3}) == []  # a hostile saved config
    (line,) = control_notes(routed)
    assert line.startswith("instructions: no self-evaluation.") and "judge.method random" in line
    (tmp_path / "config.yaml").write_text("judge: {method: random}\ntasks: {names: [arithmetic]}\n")
    assert control_tasks(read_config(tmp_path)) == ["arithmetic"] and read_config(tmp_path / "nowhere") == {}
