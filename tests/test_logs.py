"""Logging: our messages at the chosen level, the libraries' chatter silenced unless --verbose."""

from __future__ import annotations

import logging
import warnings

import pytest

from autodidact.logs import NOISY_LOGGERS, configure_logging


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
    configure_logging()
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("old API", FutureWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("your data has 3 empty rows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["your data has 3 empty rows"]
