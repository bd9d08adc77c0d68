"""Portable run directories: a run copied or moved uses its own files, says so when they are missing, and
stores no absolute path of the machine; a read-only run is still reported, exported and chatted with.

One real tiny run (2 iterations, a random-weight model, seconds) is made through the CLI in a folder of its
own, with relative paths as a user in that folder types them; every test works on copies of it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import torch
from rich.console import Console
from tests.apps.test_bad_input import read_only

import autodidact
import autodidact.apps.chat as chat_module
from autodidact.apps import cli
from autodidact.apps.chat import chat, load_chat_model
from autodidact.apps.export import export_run
from autodidact.apps.report import write_report
from autodidact.config import load_config, to_yaml, validate_config
from autodidact.errors import AutodidactError
from autodidact.store import RunStore
from autodidact.training import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from crash_run import tiny_run_config  # noqa: E402  (the crash harness's tiny run: 2 iterations, seconds)

MESSAGES = [{"role": "user", "content": "What is 7 + 14? Answer with just the number."}]


def cli_main(*argv: str, capsys) -> tuple[int, str, str]:
    """`autodidact ARGV` in this process: (exit code, stderr, stdout)."""
    capsys.readouterr()
    code = 0
    with mock.patch.object(sys, "argv", ["autodidact", *argv]):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.err, captured.out


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_llama) -> dict:
    """The tiny run, made in `root` with relative paths (`model`, `runs`); a first try into a read-only
    output_dir is refused with a fix (`--set output_dir=PATH`), which the second try follows."""
    root = tmp_path_factory.mktemp("portable")
    shutil.copytree(tiny_llama, root / "model")
    config = tiny_run_config("model", Path("runs"), "r")
    (root / "run.yaml").write_text(to_yaml(validate_config(config)), encoding="utf-8")
    (root / "locked_out").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        refused = _run_cli(["run", "run.yaml", "--set", "output_dir=locked_out"], frozen=[root / "locked_out"])
        started = _run_cli(["run", "run.yaml", "--set", "output_dir=runs"])
    return {"root": root, "run": root / "runs" / "r", "refused": refused, "started": started}


def _run_cli(argv: list[str], frozen: list[Path] = ()) -> tuple[int, str]:
    """`autodidact ARGV` in this process with stderr captured (module fixtures have no capsys)."""
    import contextlib

    stderr = io.StringIO()
    with read_only(list(frozen)), mock.patch.object(sys, "argv", ["autodidact", *argv]), \
            mock.patch.object(cli, "err", Console(file=stderr, width=400)), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main()
        except SystemExit as exc:
            return (exc.code or 0), stderr.getvalue()
    return 0, stderr.getvalue()


@pytest.fixture
def here(made, monkeypatch) -> Path:
    """The run's folder as the working directory (its config names `model` and `runs` relative to it)."""
    monkeypatch.chdir(made["root"])
    return made["root"]


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _adapter_logits(config_dir: Path, checkpoint: Path) -> torch.Tensor:
    model, tokenizer = load_policy(load_config(config_dir / "config.yaml"), str(checkpoint))
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        return model.eval()(ids).logits[0]


def test_a_read_only_output_dir_is_refused_and_the_suggested_override_starts_the_run(made):
    code, stderr = made["refused"]
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "output_dir: cannot create the run directory locked_out/r: 'locked_out' is read-only" in stderr
    assert "choose another output_dir (--set output_dir=PATH)" in stderr
    assert not (made["root"] / "locked_out" / "r").exists()
    assert made["started"][0] == 0, made["started"][1]
    assert (made["run"] / "checkpoints" / "iter-2").is_dir()


def test_a_copied_run_exports_chats_resumes_and_reports_from_its_own_files(made, here, tmp_path):
    moved = _copy(_copy(made["run"], tmp_path / "first"), tmp_path / "elsewhere" / "r2")
    shutil.rmtree(tmp_path / "first")  # the copy's original is gone: only the copy's own files can work
    checkpoint = moved / "checkpoints" / "iter-2"

    out = export_run(moved, tmp_path / "exported", iteration="2")
    provenance = json.loads((out / "autodidact_export.json").read_text())
    assert provenance["checkpoint"] == str(checkpoint.resolve())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    exported, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    with torch.no_grad():
        logits = exported(tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids).logits[0]
    assert (logits - _adapter_logits(moved, checkpoint)).abs().max() < 1e-4  # the copy's adapter, merged

    console = Console(record=True, width=200)
    lines = iter(["hello", "/exit"])
    chat(str(moved), max_new_tokens=4, input_fn=lambda _: next(lines), console=console)
    assert "iter 2" in console.export_text()
    chatted = load_chat_model(str(moved))
    ids = chatted.tokenizer(chatted.tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True),
                            add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        assert (chatted.model(ids).logits[0] - _adapter_logits(moved, checkpoint)).abs().max() < 1e-4

    # Resume as if killed after iteration 2's training: it must load the copy's checkpoint and evaluate it
    # exactly as the run did before it was copied.
    with RunStore(moved / "run.sqlite") as store:
        before = {m["name"]: m["value"] for m in store.metrics(2) if not m["task"]}
        with store.transaction():
            heldout = "SELECT id FROM samples WHERE iteration = 2 AND origin = 'heldout'"
            for table, where in (("judgments", f"sample_id IN ({heldout})"), ("samples", f"id IN ({heldout})"),
                                 ("metrics", "iteration = 2"), ("alerts", "iteration = 2"),
                                 ("stages", "iteration = 2 AND stage IN ('evaluate', 'monitor')"),
                                 ("meta", "key IN ('stop_reason', 'best_iteration')")):
                store._write(f"DELETE FROM {table} WHERE {where}", ())
            store._write("UPDATE checkpoints SET is_best = 0", ())
    result = autodidact.resume(moved)
    assert result.run_dir == moved and result.stop_reason == "reached max_iterations=2"
    with RunStore(moved / "run.sqlite", read_only=True) as store:
        after = {m["name"]: m["value"] for m in store.metrics(2) if not m["task"]}
    assert after["heldout_metric"] == before["heldout_metric"]
    assert after["judge_score"] == pytest.approx(before["judge_score"], abs=1e-6)

    page = write_report(moved)
    assert page == moved / "report.html" and "AutoDidact report: r" in page.read_text()
    # The saved config says the run began at runs/r, under the folder it was started from: nothing went there.
    assert load_config(moved / "config.yaml").output_dir == "runs"
    assert sorted(p.name for p in (here / "runs").iterdir()) == ["r"]


def test_an_old_store_naming_another_runs_checkpoints_uses_its_own(made, here, tmp_path):
    """Older runs stored absolute paths: a copy of one must use its own folder even while the original exists."""
    copy = _copy(made["run"], tmp_path / "copy")
    original = made["run"].resolve()
    with sqlite3.connect(copy / "run.sqlite") as conn:  # as an older autodidact wrote it
        conn.execute("UPDATE checkpoints SET path = ? || '/checkpoints/iter-' || iteration", (str(original),))
    own = copy / "checkpoints" / "iter-2" / "adapter_model.safetensors"
    shutil.copy(copy / "checkpoints" / "iter-1" / "adapter_model.safetensors", own)  # the copy's differs now
    assert own.read_bytes() != (original / "checkpoints" / "iter-2" / "adapter_model.safetensors").read_bytes()

    out = export_run(copy, tmp_path / "adapter", iteration="2", adapter_only=True)
    assert (out / "adapter_model.safetensors").read_bytes() == own.read_bytes()
    loaded = []
    real = chat_module._load_adapter
    with mock.patch.object(chat_module, "_load_adapter", lambda c, *a: loaded.append(c) or real(c, *a)):
        load_chat_model(str(copy))
    assert loaded == [copy / "checkpoints" / "iter-2"]

    shutil.rmtree(copy / "checkpoints" / "iter-2")  # now missing: said, never taken from the original
    with pytest.raises(AutodidactError) as caught:
        export_run(copy, tmp_path / "again", iteration="2")
    assert str(caught.value) == (
        f"run '{copy}': checkpoint checkpoints/iter-2 is missing (was the run copied without it?); "
        "use --iteration 1 for another one (on disk: 1)."
    )


def test_a_missing_checkpoint_is_named_and_the_suggested_iteration_or_folder_works(made, here, tmp_path, capsys):
    copy = _copy(made["run"], tmp_path / "copy")
    shutil.rmtree(copy / "checkpoints" / "iter-2")
    code, stderr, _ = cli_main("export", str(copy), str(tmp_path / "out"), "--iteration", "2", capsys=capsys)
    assert code == 2 and "use --iteration 1 for another one (on disk: 1)" in stderr
    code, stderr, _ = cli_main("export", str(copy), str(tmp_path / "out"), "--iteration", "1", capsys=capsys)
    assert code == 0, stderr
    assert json.loads((tmp_path / "out" / "autodidact_export.json").read_text())["iteration"] == 1

    code, stderr, _ = cli_main("chat", str(copy), capsys=capsys)
    suggestion = f"autodidact chat {copy}/checkpoints/iter-1"
    assert code == 2 and f"use a checkpoint that is there: {suggestion} (on disk: 1)." in stderr
    with mock.patch.object(sys, "stdin", io.StringIO("hello\n")):  # one message, then end of input
        code, stderr, stdout = cli_main(*suggestion.split()[1:], capsys=capsys)
    assert code == 0 and "Chatting with iter 1" in stdout, stderr

    with pytest.raises(AutodidactError, match=r"checkpoints/iter-2 is missing .*start a new run"):
        with RunStore(copy / "run.sqlite") as store, store.transaction():
            store._write("DELETE FROM meta WHERE key = 'stop_reason'", ())  # unfinished: resume continues from it
        autodidact.resume(copy)


def test_a_read_only_run_is_reported_elsewhere_exported_and_chatted_with(made, here, tmp_path, capsys):
    copy = _copy(made["run"], tmp_path / "frozen")
    with read_only([copy]):
        code, stderr, _ = cli_main("report", str(copy), capsys=capsys)
        assert code == 2 and f"cannot write the report to {copy}/report.html ({copy} is read-only); use -o PATH" \
            in stderr
        code, stderr, _ = cli_main("report", str(copy), "-o", str(tmp_path / "page.html"), capsys=capsys)
        assert code == 0 and (tmp_path / "page.html").is_file(), stderr
        assert export_run(copy, tmp_path / "out", iteration="last", adapter_only=True).is_dir()
        assert "iter 2" in load_chat_model(str(copy)).title  # its last checkpoint (no best beat the base)
        code, stderr, _ = cli_main("resume", str(copy), capsys=capsys)
        assert code == 2 and "read-only); copy it somewhere writable and resume the copy." in stderr
        writable = _copy(copy, tmp_path / "writable")
    assert sorted(p.name for p in copy.iterdir()) == ["checkpoints", "config.yaml", "run.sqlite"]
    assert autodidact.resume(writable).stop_reason == "reached max_iterations=2"


def test_a_run_is_reported_while_another_process_holds_its_store(made, here, tmp_path):
    copy = _copy(made["run"], tmp_path / "busy")
    holder = sqlite3.connect(copy / "run.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a run or the review page committing
    try:
        assert write_report(copy, tmp_path / "page.html").is_file()
    finally:
        holder.close()


HOLD = """
import fcntl, sys, time
with open(sys.argv[1], "rb") as f:
    fcntl.flock(f, fcntl.LOCK_EX)  # what a running `autodidact run` or `resume` of the run holds
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_resume_is_refused_while_another_process_runs_the_run(made, here, tmp_path, capsys):
    import subprocess

    copy = _copy(made["run"], tmp_path / "running")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(copy / "run.sqlite")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        code, stderr, _ = cli_main("resume", str(copy), capsys=capsys)
        assert code == 2 and stderr.count("\n") == 1, stderr
        assert "is in use by another autodidact process" in stderr and "wait for that process to end" in stderr
    finally:
        holder.communicate("\n", timeout=30)  # the process ends: the kernel drops its lock
    code, stderr, out = cli_main("resume", str(copy), capsys=capsys)  # the fix the error names: then resume
    assert code == 0 and "Stopped: reached max_iterations=2" in out, stderr


def test_no_absolute_path_of_the_machine_is_written_into_a_run(made, here, tmp_path):
    copy = _copy(made["run"], tmp_path / "grep")
    write_report(copy)
    export_run(copy, tmp_path / "out", iteration="2")  # reads only: the run directory must stay as it is
    texts = {"run.sqlite": "\n".join(sqlite3.connect(copy / "run.sqlite").iterdump())}
    for path in copy.rglob("*"):
        if path.suffix in (".yaml", ".json", ".html", ".md", ".jinja", ".txt"):
            texts[str(path.relative_to(copy))] = path.read_text(encoding="utf-8")
    assert {"run.sqlite", "config.yaml", "report.html", "checkpoints/iter-2/adapter_config.json"} <= texts.keys()
    machine = {str(made["root"]), str(Path(tempfile.gettempdir()).resolve()), str(Path.home()), os.getcwd()}
    found = {(name, place) for name, text in texts.items() for place in machine if place in text}
    assert not found
