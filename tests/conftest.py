"""Shared fixtures: tiny random models of several families saved to disk (built by tests/tiny_models.py)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from tiny_models import FAMILIES, build_model, build_tokenizer  # noqa: E402,F401  (the fixtures' builders)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, str]:
    """family -> directory of a saved tiny random model with the test tokenizer."""
    root = tmp_path_factory.mktemp("tiny-models")
    tokenizer = build_tokenizer()
    dirs = {}
    for family in FAMILIES:
        model = build_model(family, len(tokenizer), tokenizer)
        path = root / family
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        dirs[family] = str(path)
    return dirs


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_dirs) -> str:
    return tiny_model_dirs["llama"]


@pytest.fixture
def tiny_engine(tiny_llama):
    from autodidact.engines import TransformersEngine
    from autodidact.models import load_model

    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    return TransformersEngine(model, tokenizer, batch_size=16, score_batch_size=4)
