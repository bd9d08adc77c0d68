"""A config path that is not a config file: the error says what it is and suggests a command, which works."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from unittest import mock

import pytest

from autodidact.config import RunConfig, load_config, to_yaml
from autodidact.errors import AutodidactError


def error_of(path: Path) -> str:
    with pytest.raises(AutodidactError) as err:
        load_config(path)
    return str(err.value)


def suggested_command(message: str) -> list[str]:
    """The `autodidact ...` command an error suggests, as arguments after `autodidact`."""
    return re.search(r"`autodidact ([^`]+)`", message).group(1).split()


def cli(args: list[str]) -> int:
    from autodidact.apps import cli as cli_module

    with mock.patch.object(sys, "argv", ["autodidact", *args]), pytest.raises(SystemExit) as exit_:
        cli_module.main()
    return exit_.value.code or 0


def test_a_plain_directory_suggests_init_inside_it_and_then_run(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    message = error_of(folder)
    assert message == (
        f"config file '{folder}' is a directory, not a YAML file; create a config in it with "
        f"`autodidact init {folder}/autodidact.yaml`, then run that file."
    )
    assert cli(suggested_command(message)) == 0  # the suggestion works ...
    assert load_config(folder / "autodidact.yaml") == RunConfig()  # ... and writes a config that loads
    # Now the directory holds that config: the error points at it, and that path loads.
    again = error_of(folder)
    assert again == (
        f"config file '{folder}' is a directory; run the config in it with `autodidact run {folder}/autodidact.yaml`."
    )
    assert suggested_command(again) == ["run", f"{folder}/autodidact.yaml"]


def test_a_run_directory_suggests_resume_which_continues_it(tmp_path, capsys):
    from autodidact.store import RunStore

    run_dir = tmp_path / "runs" / "done"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(RunConfig(name="done", output_dir=str(tmp_path / "runs"))))
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.set_meta("stop_reason", "max_iterations reached")
    message = error_of(run_dir)
    assert message == (
        f"config file '{run_dir}' is a run directory; continue that run with `autodidact resume {run_dir}`."
    )
    assert cli(suggested_command(message)) == 0
    assert "Stopped: max_iterations reached." in capsys.readouterr().out


def test_a_missing_file_suggests_init_only_where_init_can_write(tmp_path):
    message = error_of(tmp_path / "new.yaml")
    new = tmp_path / "new.yaml"
    assert message == f"config file '{new}' not found. Create one with `autodidact init {new}`."
    assert cli(suggested_command(message)) == 0
    assert load_config(tmp_path / "new.yaml") == RunConfig()
    assert error_of(tmp_path / "no" / "new.yaml") == (
        f"config file '{tmp_path}/no/new.yaml' not found: there is no folder '{tmp_path}/no'. Check the path."
    )


def test_a_device_is_not_a_config_file():
    assert error_of(Path("/dev/null")) == "config file '/dev/null' is not a regular file; give the path of a YAML file."
