"""Logging: our messages at the chosen level, the libraries' chatter silenced unless --verbose."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings

import pytest

from autodidact.apps.log_setup import NOISY_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    saved = {name: logging.getLogger(name).level for name in (*NOISY_LOGGERS, "")}
    with warnings.catch_warnings():
        yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("verbose", "quiet", "library_level"),
    [(False, False, logging.ERROR), (False, True, logging.ERROR), (True, False, logging.INFO)],
)
def test_library_loggers_follow_the_switches(verbose, quiet, library_level):
    configure_logging(verbose=verbose, quiet=quiet)
    assert {logging.getLogger(name).level for name in NOISY_LOGGERS} == {library_level}


def test_default_run_hides_library_deprecations_but_keeps_other_warnings():
    warnings.resetwarnings()  # pytest's ini filters ignore these categories already: only configure_logging may
    configure_logging()
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("old API", FutureWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("your data has 3 empty rows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["your data has 3 empty rows"]


DEPRECATION = re.compile(r"\b(DeprecationWarning|FutureWarning)\b")


def test_a_tiny_cli_run_prints_no_deprecation_warnings_unless_verbose(tiny_llama, tmp_path):
    """`autodidact run` in fresh interpreters, as a user starts it (no pytest filters, no PYTHONWARNINGS).

    The `-v` run is the control: it skips the filters, and training does trigger transformers' FutureWarnings,
    so the default run's clean stderr is configure_logging's doing.
    """
    tiny = ["--set", f"model.name={tiny_llama}", "--set", "model.dtype=float32", "--set", "stopping.max_iterations=1",
            "--set", "tasks.names=[arithmetic]", "--set", "tasks.train_size=2", "--set", "tasks.heldout_size=1",
            "--set", "tasks.min_heldout=1",
            "--set", "tasks.prompts_per_iteration=1", "--set", "tasks.paraphrase_heldout_size=0",
            "--set", "generation.samples_per_prompt=2", "--set", "generation.max_new_tokens=2",
            "--set", "evaluation.max_new_tokens=2", "--set", "monitors.enabled=false"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | {"HF_HUB_OFFLINE": "1"}
    runs = {  # both at once: each is mostly interpreter and library start-up
        flags: subprocess.Popen([sys.executable, "-m", "autodidact.apps.cli", *flags, "run", *tiny, "--set", f"name={name}"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for flags, name in [((), "default"), (("-v",), "verbose")]
    }
    stderr = {}
    for flags, proc in runs.items():
        _, stderr[flags] = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[flags]
    assert [line for line in stderr[()].splitlines() if DEPRECATION.search(line)] == []
    assert any(DEPRECATION.search(line) for line in stderr[("-v",)].splitlines()), (
        "the control run printed no deprecation warning: this command no longer exercises the filter; "
        "pick one that does"
    )
