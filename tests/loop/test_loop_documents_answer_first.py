"""Answer-first documents in the loop on a tiny model: recall asked closed-book, training shaped by the task."""

from __future__ import annotations

import json

import autodidact
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore
from autodidact.tasks.documents.questions import Wordings
from tests.loop.test_loop_sources import _sources_config
from tests.tasks.test_document_answer_first import DOCUMENT


def _reworded(engine, facts, samples, embedder, seed, desc=""):
    """Each fact's cloze and one fixed rewording (a random tiny model writes none that passes the filters)."""
    wordings = [Wordings(f, (f.cloze, "Tell me: " + f.cloze)) for f in facts]
    return wordings, {}, 0


def test_answer_first_documents_evaluate_recall_closed_book_and_train_closed_book(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setattr("autodidact.tasks.documents.answer_first.write_wordings", _reworded)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.md").write_text(DOCUMENT, encoding="utf-8")
    source = {"type": "documents", "name": "docs", "path": str(tmp_path / "docs"), "chunk_chars": 260,
              "overlap_chars": 0, "heldout_ratio": 0.3, "search_first": True, "max_turns": 1, "search_top_k": 1}
    config = _sources_config(tiny_llama, tmp_path, [source], judge={"method": "random"})
    config["selection"] = {"strategy": "top_k", "top_k": 1}
    result = autodidact.run(config)
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        recall = store.prompts(split="heldout_paraphrase")
        train = store.prompts(split="train")
        assert recall and all(p.meta["book"] == "closed" for p in recall)
        assert {p.meta["question"] for p in recall}.isdisjoint(p.meta["question"] for p in train)
        ids = {p.id for p in recall}
        answers = [s for s in store.samples(1) if s.prompt_id in ids]
        assert answers and not any("<results>" in s.text for s in answers)  # no search: from memory alone
        assert store.metric(1, "paraphrase_pass_rate", task="docs") is not None
        built = json.loads(store.get_meta("task_stats/docs"))  # what the build counted, kept with the prompts
        assert built["recall_prompts"] == len(recall) and built["train_prompts"] == len(train)
        selected = store.selection(1)
        trained = store.stage_info(1, "train")["examples"]
        # Each selected transcript trains once with its results masked, plus closed-book in its fact's wordings.
        assert trained > len(selected) > 0
