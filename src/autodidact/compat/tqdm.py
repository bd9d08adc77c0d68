"""Silencing a tqdm bar a library draws without a switch of its own (written for trl 1.16.0, tqdm 4.70).

Canary: tests/compat/test_tqdm.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "TQDM_DISABLE"


@contextmanager
def quiet() -> Iterator[None]:
    """Within: `TQDM_DISABLE=1`, put back as it was on exit; our own progress bars are rich ones.

    Why (trl 1.16): DPOTrainer's reference pass (`_precompute_ref_logps`, run
    in its constructor with `precompute_ref_log_probs`) draws a tqdm bar whose
    only switch is `disable=bool(os.environ.get("TQDM_DISABLE"))`, read when
    the bar is made. tqdm itself reads its `TQDM_*` variables once, at import,
    so this silences only bars that, like TRL's, read the variable themselves.
    """
    previous = os.environ.get(ENV)
    os.environ[ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = previous
