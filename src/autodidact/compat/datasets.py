"""`Dataset.from_list` backed by files every training process sees (written for trl 1.16.0, datasets 5.2.0).

Canary: tests/compat/test_datasets.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def shared_from_list(folder: Path, state) -> Iterator[None]:
    """Within: `Dataset.from_list` gives a dataset saved once (main process) in `folder` and loaded by every process.

    Args:
        folder: a folder every process sees (the multi-process job folder).
        state: accelerate's `PartialState` of the process group.

    Why (trl 1.16, `DPOTrainer._precompute_ref_logps`): the reference
    log-probabilities are computed on every process, written by the main one
    to a cache file that `Dataset._get_cache_file_path` places next to the
    dataset's own files, and read back by all. An in-memory dataset (what
    `train_dpo` builds with `Dataset.from_list`) has no files, so every process
    names a random file in its own temporary folder, and the others fail with
    FileNotFoundError. A dataset backed by files in a folder they all see gives
    them one path. Only where the rows live changes, not what they are. The
    patch is process-wide while it lasts: use it only in a training worker.
    """
    from datasets import Dataset, load_from_disk

    original = Dataset.__dict__["from_list"]  # the classmethod object itself, put back on exit
    build = Dataset.from_list
    names = (f"dataset-{i}" for i in itertools.count())

    def from_list(*args, **kwargs):
        path = Path(folder) / next(names)  # the same name on every process: each builds its datasets in one order
        with state.main_process_first():
            if state.is_main_process:
                build(*args, **kwargs).save_to_disk(str(path))
        return load_from_disk(str(path))

    Dataset.from_list = from_list
    try:
        yield
    finally:
        Dataset.from_list = original
