"""Canary for autodidact.compat.datasets.shared_from_list: DPO's reference cache lives next to the dataset's files."""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import pytest

from autodidact.compat.datasets import shared_from_list

ROWS = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(3)]


class _OneProcess:
    """accelerate's PartialState as one process sees it."""

    is_main_process = True

    @contextmanager
    def main_process_first(self):
        yield


def test_a_dataset_from_disk_names_its_cache_files_in_its_folder_and_trl_uses_that_name(tmp_path):
    from datasets import Dataset
    from trl import DPOTrainer

    with shared_from_list(tmp_path, _OneProcess()):
        data = Dataset.from_list(ROWS)
        again = Dataset.from_list(ROWS[:1])
    assert data.to_list() == ROWS and again.to_list() == ROWS[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset-0", "dataset-1"]
    assert isinstance(Dataset.__dict__["from_list"], classmethod)  # the original is back
    if Path(data._get_cache_file_path("fingerprint")).parent != tmp_path / "dataset-0":
        pytest.fail(
            "compat.datasets.shared_from_list: a dataset loaded from disk no longer names its cache files in its "
            "own folder; revisit the workaround"
        )
    if "_get_cache_file_path" not in inspect.getsource(DPOTrainer._precompute_ref_logps):
        pytest.fail(
            "compat.datasets.shared_from_list: TRL's DPO reference cache is no longer named by the dataset's "
            "_get_cache_file_path; revisit the workaround (it may be unneeded)"
        )
