"""`autodidact documents FOLDER`: its packaged config, --dry-run, and a bad folder as one line (no model run)."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from typer.testing import CliRunner

from autodidact.apps import cli
from autodidact.apps.documents_cmd import DOCUMENTS_DEFAULTS, documents_config, source_name
from autodidact.config import DocumentsSourceConfig, RunConfig
from autodidact.errors import AutodidactError


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    """The real entry point in this process: its exit code, stdout and stderr."""
    capsys.readouterr()
    with mock.patch.object(sys, "argv", ["autodidact", *argv]), pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_packaged_default_validates_with_the_documents_source(tmp_path: Path) -> None:
    config = documents_config(tmp_path / "My Notes (2024)", iterations=4, seed=7, output_dir=tmp_path / "runs")
    [source] = config.tasks.sources
    assert isinstance(source, DocumentsSourceConfig)
    assert (source.name, source.path) == ("My_Notes_2024", str(tmp_path / "My Notes (2024)"))
    assert (source.questions, source.search, source.search_first) == ("answer_first", True, True)
    assert (source.search_top_k, source.max_turns, source.heldout_ratio) == (1, 1, 0.2)
    assert config.tasks.names == [] and config.judge.method == "verifier"
    assert (config.selection.top_k, config.selection.min_score) == (1, 5)
    assert (config.training.method, config.training.finetune) == ("sft", "lora")
    assert (config.stopping.max_iterations, config.seed, config.output_dir) == (4, 7, str(tmp_path / "runs"))
    # The defaults alone (a path filled in) are a valid config too: nothing depends on the options' values.
    assert RunConfig.model_validate({**DOCUMENTS_DEFAULTS, "tasks": {
        **DOCUMENTS_DEFAULTS["tasks"], "sources": [{**DOCUMENTS_DEFAULTS["tasks"]["sources"][0], "path": "x"}]}})  # fmt: skip


def test_set_reaches_the_source_and_bad_keys_are_one_line(tmp_path: Path) -> None:
    config = documents_config(tmp_path, name="manual", overrides=["tasks.sources.0.chunk_chars=800", "seed=3"])
    assert (config.tasks.sources[0].name, config.tasks.sources[0].chunk_chars, config.seed) == ("manual", 800, 3)
    with pytest.raises(AutodidactError, match=r"^config: unknown key 'tasks.sources.0.chunk_charz'"):
        documents_config(tmp_path, overrides=["tasks.sources.0.chunk_charz=800"])


@pytest.mark.parametrize(("folder", "expected"), [("My Notes (2024)", "My_Notes_2024"), ("---", "documents")])
def test_source_name_is_the_folder_name_made_safe(tmp_path: Path, folder: str, expected: str) -> None:
    assert source_name(tmp_path / folder) == expected


def test_dry_run_prints_the_config_with_the_folder_and_iterations(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "ch1.md").write_text("The pump delivers 40 litres a minute.", encoding="utf-8")
    (tmp_path / "manual" / "scan.pdf").write_bytes(b"%PDF")
    result = CliRunner().invoke(cli.app, ["documents", "manual", "--dry-run", "--iterations", "5", "--seed", "2",
                                          "--set", "tasks.sources.0.chunk_chars=900"])  # fmt: skip
    assert result.exit_code == 0, result.output
    first, _, body = result.stdout.partition("\n")
    assert first == "# manual: 1 document(s) read, 1 skipped: 1 PDF"
    printed = yaml.safe_load(body)
    assert printed["tasks"]["sources"][0]["path"] == str(tmp_path / "manual")
    assert printed["tasks"]["sources"][0]["name"] == "manual" and printed["tasks"]["sources"][0]["chunk_chars"] == 900
    assert printed["stopping"]["max_iterations"] == 5 and printed["seed"] == 2
    assert RunConfig.model_validate(printed).tasks.sources[0].path == str(tmp_path / "manual")
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


@pytest.mark.parametrize("case", ["missing", "empty", "only a pdf"])
def test_a_bad_folder_is_one_line_exit_2_nothing_written(tmp_path: Path, monkeypatch, capsys, case: str) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "docs"
    if case != "missing":
        folder.mkdir()
    if case == "only a pdf":
        (folder / "scan.pdf").write_bytes(b"%PDF")
    code, out, err = _main(["documents", "docs", "--iterations", "1"], capsys)
    expected = {
        "missing": f"error: documents: '{folder}' does not exist; give a folder of .md, .txt or .html files (or one "
        "such file).",
        "empty": f"error: documents: no readable document in '{folder}' (it holds no file); add UTF-8 .md, .txt or "
        ".html files.",
        "only a pdf": f"error: documents: no readable document in '{folder}' (1 skipped: 1 PDF); add UTF-8 .md, .txt "
        "or .html files; PDF (scan.pdf): convert it with `pdftotext FILE.pdf FILE.txt` (from poppler-utils).",
    }[case]
    assert (code, out, err) == (2, "", expected + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if case == "missing" else ["docs"])


def test_cli_runner_sees_the_error_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["documents", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and isinstance(result.exception, AutodidactError)
    assert str(result.exception).count("\n") == 0 and "Traceback" not in result.output


def test_the_apollo13_example_uses_the_commands_settings():
    """The example and `autodidact documents` must not drift apart: the example is the command on one file."""
    from pathlib import Path

    from autodidact.apps.documents_cmd import documents_config
    from autodidact.config import load_config

    root = Path(__file__).parents[2]
    example = load_config(root / "examples" / "apollo13" / "config.yaml")
    report = root / "examples" / "apollo13" / "apollo13_mission_report.md"
    command = documents_config(report, name="apollo13", output_dir=example.output_dir, seed=example.seed)
    ours, theirs = example.model_dump(), command.model_dump()
    ours["tasks"]["sources"][0]["path"] = theirs["tasks"]["sources"][0]["path"] = "-"
    assert ours == theirs
