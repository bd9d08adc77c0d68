"""The document task: chunking, question writing and its filters, the search tool, grading.

The test corpus (tests/data/documents) is an excerpt of the Apollo 13 Mission
Report (NASA MSC-02680, 1970; public domain, OCR errors kept) and a bread recipe.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from autodidact.config import DocumentsSourceConfig
from autodidact.engines import Completion, FailedRow, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.records import Prompt
from autodidact.tasks.documents import (
    Chunk,
    DocumentsTask,
    QAPair,
    SearchIndex,
    SearchStats,
    answer_supported,
    answer_with_search,
    chunk_documents,
    chunk_text,
    filter_pairs,
    final_answer,
    load_documents,
    parse_qa,
    split_chunks,
    spread,
    write_pairs,
)

DATA = Path(__file__).parents[1] / "data" / "documents"
_TOKEN = re.compile(r"[a-z0-9]+")


class BagOfWords:
    """An `Embedder` with a hashed bag of words: equal word sets embed equally, disjoint ones orthogonally."""

    def encode(self, texts):
        vectors = np.zeros((len(texts), 512), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _TOKEN.findall(text.lower()):
                vectors[row, sum(map(ord, word)) * 31 % 512] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


class ScriptedEngine:
    """An engine whose replies come from `reply(prompt, sample_index, params)`; records every call."""

    supports_logprobs = True

    def __init__(self, reply=None, logprobs=None):
        self.reply = reply or (lambda prompt, k, params: "")
        self.logprobs = logprobs or (lambda prompt: [math.log(0.5), math.log(0.5)])
        self.calls: list[tuple[list[str], SamplingParams]] = []
        self.scored: list[str] = []

    def render(self, messages):
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"

    def generate(self, prompts, params, desc=""):
        self.calls.append((list(prompts), params))
        return [[self._completion(self.reply(p, k, params)) for k in range(params.n)] for p in prompts]

    @staticmethod
    def _completion(text):
        return text if isinstance(text, Completion) else Completion(text=text, num_tokens=len(text.split()))

    def continuation_logprobs(self, prompts, continuations, desc=""):
        self.scored += list(prompts)
        return [self.logprobs(p) for p in prompts]


# --- reading and chunking -----------------------------------------------------


def test_load_documents_reads_md_and_txt_recursively_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("zeta", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufeffalpha", encoding="utf-8")  # a BOM is dropped
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    assert load_documents(tmp_path) == [("a.txt", "alpha"), ("b/z.md", "zeta")]
    assert load_documents(tmp_path / "a.txt") == [("a.txt", "alpha")]


def test_non_utf8_and_empty_files_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    (tmp_path / "good.md").write_text("fine", encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "blank.md").write_text("  \n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert load_documents(tmp_path) == [("good.md", "fine")]
    assert "skipped 1 file(s) not UTF-8 text: latin.txt" in caplog.text
    assert "skipped 1 file(s) empty or only whitespace (no text): blank.md" in caplog.text


def test_folder_with_no_readable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    with pytest.raises(AutodidactError, match=r"no readable document .*\(2 skipped: 1 not UTF-8, 1 PDF\)"):
        load_documents(tmp_path)
    with pytest.raises(AutodidactError, match="does not exist"):
        load_documents(tmp_path / "missing")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(AutodidactError, match=r"not a \.md, \.markdown, \.txt, \.html or \.htm file"):
        load_documents(tmp_path / "photo.png")


def test_chunks_end_at_paragraphs_then_sentences_and_overlap_by_whole_words() -> None:
    text = "One two. Three four.\n\nFive six seven. Eight nine ten."
    assert chunk_text(text, 24, 6) == ["One two. Three four.", "four.\n\nFive six seven.", "seven. Eight nine ten."]
    assert chunk_text(text, 24, 0) == ["One two. Three four.", "Five six seven.", "Eight nine ten."]
    assert chunk_text("alpha beta gamma delta", 100, 10) == ["alpha beta gamma delta"]


def test_unbroken_text_is_cut_at_the_limit_and_blank_text_gives_no_chunk() -> None:
    assert chunk_text("abcdefghijklmnopqrstuvwxyz", 10, 3) == ["abcdefghij", "hijklmnopq", "opqrstuvwx", "vwxyz"]
    assert chunk_text(" \n\n \t", 100, 10) == []


def test_chunks_of_the_report_are_bounded_overlapping_and_cover_every_sentence() -> None:
    text = (DATA / "apollo_excerpt.md").read_text(encoding="utf-8")
    chunks = chunk_text(text, 400, 80)
    assert len(chunks) >= 5
    assert all(c.strip() == c and 0 < len(c) <= 400 for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after[:60] in before  # ≥ 80 characters overlap, starting on a word
        assert after[0].isalnum() and before.endswith((".", "。"))
    for sentence in re.split(r"(?<=\.) ", text.replace("\n", " ")):
        assert any(sentence.strip() in c.replace("\n", " ") for c in chunks), sentence


def test_overlap_of_half_a_chunk_or_more_is_refused() -> None:
    with pytest.raises(AutodidactError, match="below half"):
        chunk_text("some text here", 100, 50)


def test_split_trims_training_chunks_of_held_out_text() -> None:
    document = "Alpha beta gamma delta. " * 30  # 720 characters
    chunks = chunk_documents([("d.md", document)], 200, 50)
    heldout, train, cleared = split_chunks(chunks, {"d.md": document}, 0.2, seed=0)
    assert len(heldout) == 1 and len(train) + cleared == len(chunks) - 1
    (h,) = heldout
    for t in train:
        assert t.end <= h.start or h.end <= t.start  # no shared text
        assert t.text == document[t.start : t.end] and len(t.text) >= 100
    neighbours = [c for c in chunks if abs(c.index - h.index) == 1]
    trimmed = [t for t in train if t.index in {c.index for c in neighbours}]
    assert trimmed and all(len(t.text) < len(chunks[t.index].text) for t in trimmed)
    assert split_chunks(chunks, {"d.md": document}, 0.0, seed=0) == ([], chunks, 0)


def test_chunk_ids_and_even_spread() -> None:
    chunks = chunk_documents([("a.md", "One. Two."), ("b.txt", "Three.")], 100, 10)
    assert [(c.id, c.source, c.index, c.start, c.end) for c in chunks] == [
        ("a.md#0", "a.md", 0, 0, 9),
        ("b.txt#0", "b.txt", 0, 0, 6),
    ]
    assert spread(list(range(10)), 4) == [0, 2, 5, 7]
    assert spread(list(range(3)), 4) == [0, 1, 2] and spread(list(range(3)), None) == [0, 1, 2]


# --- question/answer pairs ----------------------------------------------------


def test_parse_qa_reads_well_formed_and_variant_markers() -> None:
    text = (
        "Q: What failed?\nA: The oxygen tank.\n\nQ2: When?\nA2: At 56 hours.\n"
        "**Q:** Who? **A:** Lovell\n1. Question:\nWhere?\nAnswer: The South Pacific."
    )
    assert parse_qa(text) == [
        ("What failed?", "The oxygen tank."),
        ("When?", "At 56 hours."),
        ("Who?", "Lovell"),
        ("Where?", "The South Pacific."),
    ]


def test_parse_qa_ignores_malformed_output() -> None:
    text = (
        "Sure! Here are questions.\nA: an answer with no question\nQ: never answered\n"
        "Q: What tank?\nA: Tank 2\nA: a second answer\nQ:"
    )
    assert parse_qa(text) == [("What tank?", "Tank 2")]
    listed = (
        "Q: 1. What is the purpose of the hatch?\nA: 2. What is the purpose of the valve?\nQ: 2) Who?\nA: 1.8 seconds"
    )
    assert parse_qa(listed) == [
        ("What is the purpose of the hatch?", "What is the purpose of the valve?"),  # parsed; the filter drops it
        ("Who?", "1.8 seconds"),
    ]
    assert parse_qa("") == [] and parse_qa("no markers at all") == []


def test_support_filter_needs_most_content_words_in_the_chunk() -> None:
    chunk = "At approximately 56 hours, the pressure in cryogenic oxygen tank 2 began to rise."
    assert answer_supported("56 hours", chunk)
    assert answer_supported("The oxygen tanks", chunk)  # plural and stopwords do not matter
    assert answer_supported("Oxygen tank 2 pressure rose quickly", chunk)  # 4 of 6 content words
    assert not answer_supported("Tank 3 exploded", chunk)  # 1 of 3 content words
    assert not answer_supported("A meteoroid struck the spacecraft", chunk)
    assert not answer_supported("Yes, it is.", chunk)  # no content word: no checkable fact


def test_filter_pairs_counts_each_rule() -> None:
    chunks = {"c#0": "The oxygen tank 2 failed at 56 hours. The crew used the lunar module."}
    pairs = [
        QAPair("When did tank 2 fail?", "At 56 hours", "c#0"),
        QAPair("When did tank 2 fail ?", "56 hours", "c#0"),  # duplicate of the first
        QAPair('Which module did "the crew use?"', "The lunar module", "c#0"),  # a quoted "?" still ends it
        QAPair("What caused it?", "Sabotage by gremlins", "c#0"),  # unsupported
        QAPair("Anything?", "", "c#0"),  # empty
        QAPair("Describe it?", " ".join(["oxygen"] * 41), "c#0"),  # too long
        QAPair("8.7.3 Oxygen Tank Incident", "2", "c#0"),  # malformed: a heading is not a question
        QAPair("What did the crew use?", "What did the crew do?", "c#0"),  # malformed: the answer is a question
    ]
    kept, dropped = filter_pairs(pairs, chunks, BagOfWords())
    assert kept == [pairs[0], pairs[2]]
    assert dict(dropped) == {"empty": 1, "malformed": 2, "too_long": 1, "unsupported": 1, "duplicate": 1}
    kept_exact, dropped_exact = filter_pairs(pairs, chunks, None)  # without an embedder: exact repeats
    assert kept_exact == [pairs[0], pairs[2]] and dropped_exact["duplicate"] == 1


def test_duplicate_filter_with_the_bundled_embedder(embedder) -> None:
    chunks = {"c#0": "Apollo 13 lost oxygen tank 2; the bread recipe bakes for 35 minutes."}
    pairs = [
        QAPair("What failed on Apollo 13?", "oxygen tank 2", "c#0"),
        QAPair("what failed on apollo 13 ?", "tank 2", "c#0"),
        QAPair("How long does the bread bake?", "35 minutes", "c#0"),
    ]
    kept, dropped = filter_pairs(pairs, chunks, embedder)
    assert kept == [pairs[0], pairs[2]] and dropped["duplicate"] == 1


def test_write_pairs_is_greedy_keeps_n_per_chunk_and_skips_failed_requests() -> None:
    replies = iter(
        [" What failed?\nA: Tank 2\nQ: When?\nA: 56 hours\nQ: Extra?\nA: Extra", Completion("", 0, error="down")]
    )
    engine = ScriptedEngine(lambda prompt, k, params: next(replies))
    chunks = [Chunk("a#0", "a", "Tank 2 failed at 56 hours."), Chunk("a#1", "a", "Other text.")]
    pairs, failed = write_pairs(engine, chunks, 2)
    assert pairs == [QAPair("What failed?", "Tank 2", "a#0"), QAPair("When?", "56 hours", "a#0")]
    assert failed == 1
    prompts, params = engine.calls[0]
    assert params.temperature == 0.0 and params.n == 1
    assert (
        "Tank 2 failed at 56 hours." in prompts[0] and "Write 2 questions" in prompts[0] and prompts[0].endswith("Q:")
    )


# --- search -------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    from autodidact.embeddings import load_embedder

    return load_embedder("default")


def test_search_finds_the_chunk_that_holds_the_facts(embedder) -> None:
    chunks = chunk_documents(load_documents(DATA), 400, 80)
    index = SearchIndex(chunks, embedder)
    assert "recovery ship" in index.search("Where did the crew land and how were they recovered?", 1)[0].text
    assert index.search("How long does the bread bake in the oven?", 1)[0].source == "bread.txt"
    top = index.search("What happened to the pressure in cryogenic oxygen tank 2?", 2)
    assert len(top) == 2 and any("abruptly lost pressure" in c.text for c in top)
    assert len(index.search("anything", 100)) == len(chunks)


def _index() -> SearchIndex:
    chunks = [Chunk("r#0", "r", "The oxygen tank 2 failed at 56 hours."), Chunk("b#0", "b", "Bread needs flour.")]
    return SearchIndex(chunks, BagOfWords())


def _prompt(question: str = "What failed?", reference: str = "The oxygen tank", pid: str = "d-heldout-0000") -> Prompt:
    return Prompt(
        pid, "documents", "heldout", [{"role": "user", "content": question}], reference, {"question": question}
    )


def _searcher(prompt: str, k: int, params: SamplingParams) -> str:
    return "The oxygen tank failed." if prompt.endswith("</results>\n") else "<search>oxygen tank</search> (extra text)"


def test_search_runner_gives_the_exact_transcript() -> None:
    engine, stats = ScriptedEngine(_searcher), SearchStats()
    out = answer_with_search(engine, [_prompt()], SamplingParams(n=1), _index(), k=1, max_turns=2, stats=stats)
    transcript = (
        "<search>oxygen tank</search>\n<results>\n[1] The oxygen tank 2 failed at 56 hours.\n</results>\n"
        "The oxygen tank failed."
    )
    assert [c.text for c in out[0]] == [transcript]
    assert out[0][0].num_tokens == 4 + 4  # tokens generated over both turns, the discarded tail included
    assert final_answer(transcript) == "The oxygen tank failed." and final_answer("Just this.") == "Just this."
    assert engine.calls[1][0] == [engine.render(_prompt().messages) + transcript.rsplit("The oxygen", 1)[0]]
    assert (stats.searches, stats.malformed, stats.over_budget, stats.transcripts) == (1, 0, 0, 1)


def test_search_runner_batches_turns_and_keeps_samples_apart() -> None:
    def reply(prompt: str, k: int, params: SamplingParams) -> str:
        return f"Answer seed {params.seed}." if prompt.endswith("</results>\n") else "<search>oxygen tank</search>"

    engine = ScriptedEngine(reply)
    prompts = [_prompt(pid="a"), _prompt("Bread?", pid="b")]
    out = answer_with_search(engine, prompts, SamplingParams(n=2, seed=7), _index(), k=1, max_turns=1)
    # Turn 1: one call for 2 prompts x 2 samples; turn 2: the two identical transcripts of a prompt
    # go in two calls (copy 0 and copy 1) with different seeds.
    assert [(len(p), params.n, params.seed) for p, params in engine.calls] == [(2, 2, 7), (2, 1, 7), (2, 1, 8)]
    assert [[final_answer(c.text) for c in cs] for cs in out] == [["Answer seed 7.", "Answer seed 8."]] * 2


def test_malformed_and_over_budget_calls_end_the_transcript_without_raising() -> None:
    replies = {"a": "<search>oxygen tank", "b": "<search>  </search> 56 hours", "c": "56 hours"}
    engine = ScriptedEngine(lambda prompt, k, params: next(v for key, v in replies.items() if f">{key}<" in prompt))
    stats = SearchStats()
    prompts = [_prompt(q, pid=q) for q in "abc"]
    out = answer_with_search(engine, prompts, SamplingParams(), _index(), k=1, max_turns=2, stats=stats)
    assert [cs[0].text for cs in out] == ["<search>oxygen tank", "<search>  </search> 56 hours", "56 hours"]
    assert (stats.malformed, stats.searches, len(engine.calls)) == (2, 0, 1)

    always_search, stats = ScriptedEngine(lambda *_: "<search>oxygen tank</search>"), SearchStats()
    out = answer_with_search(always_search, [_prompt()], SamplingParams(), _index(), k=1, max_turns=1, stats=stats)
    assert out[0][0].text.count("<results>") == 1 and final_answer(out[0][0].text) == ""  # the over-budget call is cut from the answer
    assert (stats.searches, stats.over_budget) == (1, 1)


def test_an_opening_search_starts_every_transcript_and_counts_against_the_budget() -> None:
    engine, stats = ScriptedEngine(lambda *_: "<search>bread</search>"), SearchStats()
    out = answer_with_search(
        engine, [_prompt()], SamplingParams(n=2), _index(), k=1, max_turns=1, stats=stats, opening_queries=["tank"]
    )
    opening = "<search>tank</search>\n<results>\n[1] The oxygen tank 2 failed at 56 hours.\n</results>\n"
    assert [c.text for c in out[0]] == [opening + "<search>bread</search>"] * 2
    assert engine.calls[0][0] == [engine.render(_prompt().messages) + opening] and len(engine.calls) == 1
    assert (stats.searches, stats.over_budget) == (2, 2)


def test_an_engine_failure_mid_transcript_is_returned_as_a_failed_completion() -> None:
    engine = ScriptedEngine(
        lambda p, k, params: Completion("", 0, "timeout") if p.endswith("</results>\n") else "<search>tank</search>"
    )
    out = answer_with_search(engine, [_prompt()], SamplingParams(), _index(), k=1, max_turns=2)
    assert out[0][0] == Completion(text="", num_tokens=1, error="timeout")


# --- the task -----------------------------------------------------------------


def _config(**overrides) -> DocumentsSourceConfig:
    settings = dict(
        path=str(DATA), chunk_chars=300, overlap_chars=60, heldout_ratio=0.3, questions_per_chunk=2, questions="model",
        grading="model",
    )
    return DocumentsSourceConfig(**{**settings, **overrides})


def _pair_writer(prompt: str, k: int, params: SamplingParams) -> str:
    """One supported pair naming the chunk's first words, and one invented (unsupported) pair."""
    passage = prompt.split("Passage:\n", 1)[1].split("\n\nWrite", 1)[0]
    first = " ".join(passage.split()[:6])
    return f" What does the passage begin with: {first}?\nA: {first}\nQ: Who wrote it?\nA: Purple gremlins"


def test_build_splits_chunks_and_makes_prompts() -> None:
    task = DocumentsTask(_config(), ScriptedEngine(_pair_writer), BagOfWords())
    train, heldout = task.build(train_size=100, heldout_size=100, seed=0)
    stats = task.stats
    assert stats["chunks"] == stats["chunks_used"] > 5
    assert stats["heldout_chunks"] == round(0.3 * stats["chunks"]) and stats["train_chunks"] > 0
    assert stats["pairs_written"] == 2 * (stats["train_chunks"] + stats["heldout_chunks"])
    assert stats["dropped_unsupported"] == stats["pairs_written"] // 2
    assert len(train) + len(heldout) == stats["pairs_kept"] > 0 and len(heldout) > 0
    train_chunks, heldout_chunks = {p.meta["chunk_id"] for p in train}, {p.meta["chunk_id"] for p in heldout}
    assert train_chunks.isdisjoint(heldout_chunks)
    # No training chunk shares text with a held-out chunk: overlaps were cut off.
    assert stats["trimmed_chunks"] > 0
    for t in task.train_chunks:
        assert all(t.source != h.source or t.end <= h.start or h.end <= t.start for h in task.heldout_chunks)
    first = train[0]
    assert first.id == "documents-train-0000" and first.split == "train" and first.task == "documents"
    assert "<search>" in first.text and first.text.endswith(f"Question: {first.meta['question']}")
    written = {c.id: c.text for c in task.train_chunks}
    assert first.reference == " ".join(written[first.meta["chunk_id"]].split()[:6])
    assert task.build(100, 100, seed=0) == (train, heldout)
    assert task.build(100, 100, seed=1)[1] != heldout


def test_build_caps_sizes_spreads_chunks_and_answers_without_search() -> None:
    task = DocumentsTask(_config(max_chunks=4, search=False, heldout_ratio=0.25), ScriptedEngine(_pair_writer), None)
    train, heldout = task.build(train_size=2, heldout_size=1, seed=0)
    assert (len(train), len(heldout), task.stats["chunks_used"]) == (2, 1, 4)
    assert len({p.meta["chunk_id"] for p in train}) == 2  # the cap takes one pair per chunk first
    assert "<search>" not in train[0].text and not hasattr(task, "respond")


def test_build_on_the_tiny_model_completes_or_explains(tiny_engine) -> None:
    task = DocumentsTask(_config(max_chunks=3, questions_per_chunk=1), tiny_engine, BagOfWords())
    try:
        train, heldout = task.build(train_size=10, heldout_size=10, seed=0)
        assert train and {p.meta["chunk_id"] for p in train}.isdisjoint({p.meta["chunk_id"] for p in heldout})
    except AutodidactError as exc:  # a random model rarely writes a usable pair
        assert "no usable training question" in str(exc)
    assert task.stats["chunks_used"] == 3 and task.stats["heldout_chunks"] == 1
    assert task.stats["pairs_written"] >= task.stats["pairs_kept"] >= 0


def test_bad_qa_prompt_and_missing_embedder_are_refused() -> None:
    with pytest.raises(AutodidactError, match=r"qa_prompt lacks \{n\}"):
        DocumentsTask(_config(qa_prompt="Questions about {chunk}"), ScriptedEngine(), BagOfWords())
    with pytest.raises(AutodidactError, match="needs a sentence embedder"):
        DocumentsTask(_config(), ScriptedEngine(), None)
    with pytest.raises(AutodidactError, match="needs the model"):
        DocumentsTask(_config(), None, BagOfWords())  # type: ignore[arg-type]


def test_respond_answers_with_the_search_tool() -> None:
    def reply(prompt: str, k: int, params: SamplingParams) -> str:
        return "56 hours." if prompt.endswith("</results>\n") else "<search>bread flour</search>"

    task = DocumentsTask(_config(), ScriptedEngine(_pair_writer), BagOfWords())
    train, _ = task.build(10, 10, seed=0)
    out = task.respond(ScriptedEngine(reply), train[:2], SamplingParams(n=2), desc="generating")
    assert [len(cs) for cs in out] == [2, 2]
    assert "500 grams of flour" in out[0][0].text and final_answer(out[0][0].text) == "56 hours."
    assert task.search_stats.searches == 4
    first = DocumentsTask(_config(max_turns=2), ScriptedEngine(_pair_writer), BagOfWords(), search_first=True)
    train, _ = first.build(10, 10, seed=0)
    out = first.respond(ScriptedEngine(reply), train[:1], SamplingParams(), desc="generating")
    assert out[0][0].text.startswith(f"<search>{train[0].meta['question']}</search>\n<results>\n[1] ")
    assert final_answer(out[0][0].text) == "56 hours." and first.search_stats.searches == 1


def test_restore_rebuilds_the_index_and_split_of_build_without_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for f in DATA.iterdir():
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    built = DocumentsTask(_config(path=str(folder)), ScriptedEngine(_pair_writer), BagOfWords())
    train, heldout = built.build(100, 100, seed=0)

    def no_writing(prompt: str, k: int, params: SamplingParams) -> str:
        raise AssertionError("restore writes no question")

    restored = DocumentsTask(_config(path=str(folder)), ScriptedEngine(no_writing), BagOfWords())
    restored.restore(train + heldout, seed=0)
    assert restored.index.chunks == built.index.chunks and np.array_equal(restored.index.vectors, built.index.vectors)
    assert (restored.heldout_chunks, restored.train_chunks) == (built.heldout_chunks, built.train_chunks)
    assert restored.search_tool()("bread flour") == built.search_tool()("bread flour")
    # Documents edited since the questions were written: refused, not searched with another index.
    (folder / "bread.txt").write_text("Flour.\n", encoding="utf-8")
    with pytest.raises(AutodidactError, match="changed since this run wrote its questions"):
        DocumentsTask(_config(path=str(folder)), ScriptedEngine(no_writing), BagOfWords()).restore(train, seed=0)


# --- grading ------------------------------------------------------------------


def _verdict_engine(p_yes: float) -> ScriptedEngine:
    return ScriptedEngine(logprobs=lambda prompt: [math.log(p_yes), math.log(1 - p_yes)])


@pytest.mark.parametrize(("p_yes", "expected"), [(0.8, 1.0), (0.5, 1.0), (0.2, 0.0)])
def test_verify_reads_yes_no_probabilities(p_yes: float, expected: float) -> None:
    engine = _verdict_engine(p_yes)
    task = DocumentsTask(_config(), engine, BagOfWords())
    transcript = "<search>tank</search>\n<results>\n[1] text\n</results>\nTank two broke."
    assert task.verify(_prompt(reference="Oxygen tank 2 failed"), transcript) == expected
    assert (
        "Proposed answer:\n<<<RESPONSE>>>\nTank two broke.\n<<<END RESPONSE>>>" in engine.scored[0]
        and "Reference answer: Oxygen tank 2 failed" in engine.scored[0]
    )
    assert engine.scored[0].endswith("<assistant>Answer:")


def test_verify_shortcuts_and_failures() -> None:
    engine = ScriptedEngine(logprobs=lambda prompt: FailedRow(2, "server down"))
    task = DocumentsTask(_config(), engine, BagOfWords())
    prompt = _prompt(reference="The oxygen tank.")
    verdicts = task.verify_batch(
        [prompt, prompt, prompt, _prompt(reference=None)], ["the Oxygen tank", "", "A fire.", "x"]
    )
    assert verdicts == [1.0, 0.0, None, None]
    assert len(engine.scored) == 1  # only the one answer that needed the model
    tiny_mass = DocumentsTask(_config(), ScriptedEngine(logprobs=lambda p: [-20.0, -20.0]), BagOfWords())
    assert tiny_mass.verify(prompt, "A fire.") is None


def test_verify_on_the_tiny_model_runs_and_refuses_a_verdict_it_cannot_give(tiny_engine) -> None:
    # The random model spreads its probability over 400 tokens: " yes" and " no" (3 tokens each
    # here) get about e^-18, below MIN_VERDICT_MASS, so there is no verdict rather than a coin flip.
    task = DocumentsTask(_config(), tiny_engine, BagOfWords())
    assert task.verify(_prompt(reference="The oxygen tank"), "A fire in the service module") is None
    assert task.verify(_prompt(reference="The oxygen tank"), "the oxygen tank!") == 1.0
