"""Answer-first document questions: wordings, their filters, the three prompt sets, span grading and training."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodidact.config import DocumentsSourceConfig
from autodidact.records import SFTExample
from autodidact.tasks.documents import DocumentsTask
from autodidact.tasks.documents.asking import MEMORY_INSTRUCTION, shaped_examples
from autodidact.tasks.documents.facts import Fact
from autodidact.tasks.documents.questions import check_wording, lead, write_wordings
from autodidact.tasks.documents.search import format_results
from tests.tasks.test_documents import BagOfWords, ScriptedEngine

WATER = Fact(
    chunk_id="r.md#3",
    sentence="At the time of the incident, about 38 pounds of water was available in the potable water tank.",
    span="38 pounds",
    kind="quantity",
    cloze="At the time of the incident, about how many pounds of water was available in the potable water tank?",
)
DOCUMENT = """# Consumables

At the time of the incident, about 38 pounds of water was available in the potable water tank. During the abort
phase, the crew used juice bags to transfer approximately 14 pounds of water from the command module to the lunar
module for drinking and food preparation.

# Power

The command module was completely powered down at 58 hours 40 minutes, at which time 99 ampere-hours remained in
the three entry batteries. A total of 410 ampere hours remained in the lunar module batteries at the time of
undocking. The estimated total energy transferred to the command module was approximately 129 ampere hours.
"""


def test_lead_is_the_clozes_wh_phrase() -> None:
    assert lead(WATER) == "How many pounds"


@pytest.mark.parametrize(
    ("question", "failed"),
    [
        ("How many pounds of water were in the potable water tank at the incident?", None),
        ("How many pounds?", "unfinished"),
        (None, "unfinished"),
        ("How many pounds of water, 38 pounds, were in the potable water tank?", "answered"),
        ("How many pounds of water were in the tank in 1971?", "answered"),  # a number the cloze does not hold
        ("How many pounds of fuel did the rocket burn before orbit?", "off_topic"),
        ("How many pounds of water in the tank?", "off_topic"),  # too little of the fact to be answerable
        ("How many pounds of water were available, and what time was the incident in the potable water tank?",
         "off_topic"),  # two questions in one
        ("How many pounds of water in the tank of water in the tank of water?", "unfinished"),  # looping
    ],
)
def test_check_wording(question, failed) -> None:
    assert check_wording(WATER, question) == failed


def test_write_wordings_keeps_the_cloze_first_and_filters_the_models_wordings() -> None:
    replies = [
        "of water were in the potable water tank at the incident?",  # kept
        "of water, 38 pounds?",  # answered
        "of water were in the potable water tank at the incident?",  # a repeat of the first
        "of fuel did the rocket burn before orbit?",  # off topic
    ]
    engine = ScriptedEngine(lambda prompt, k, params: replies[k])
    twin = Fact(WATER.chunk_id, WATER.sentence, WATER.span, WATER.kind, WATER.cloze)  # the same question again
    wordings, dropped, failed = write_wordings(engine, [WATER, twin], 4, BagOfWords(), seed=0)
    assert [w.questions for w in wordings] == [
        (WATER.cloze, "How many pounds of water were in the potable water tank at the incident?")
    ]
    assert (dropped["answered"], dropped["off_topic"], dropped["repeat"], dropped["duplicate_fact"]) == (1, 1, 1, 1)
    assert failed == 0
    prompt, params = engine.calls[0][0][0], engine.calls[0][1]
    assert prompt.endswith("<assistant>How many pounds") and params.n == 4


def _task(tmp_path: Path, **overrides) -> DocumentsTask:
    (tmp_path / "report.md").write_text(DOCUMENT, encoding="utf-8")
    settings = dict(path=str(tmp_path), chunk_chars=260, overlap_chars=0, heldout_ratio=0.3, wordings=3)
    config = DocumentsSourceConfig(**{**settings, **overrides})

    def reword(prompt: str, k: int, params) -> str:  # a faithful rewording: the cloze's own words after its lead
        cloze = prompt.split("Question: ", 1)[1].split("</user>", 1)[0]
        at = cloze.lower().find(lead_of(prompt).lower())
        rest = cloze[at + len(lead_of(prompt)) :] if at >= 0 else cloze
        return rest + ("" if k == 0 else " ")  # two wordings, the second a near-repeat of the first

    return DocumentsTask(config, ScriptedEngine(reword), BagOfWords(), search_first=True)


def lead_of(prompt: str) -> str:
    return prompt.rsplit("<assistant>", 1)[1]


def test_build_makes_train_open_book_and_closed_book_recall_sets(tmp_path: Path) -> None:
    task = _task(tmp_path)
    train, heldout = task.build(train_size=100, heldout_size=100, seed=0)
    recall = task.build_paraphrased(100, 100, 100, seed=0)
    heldout_chunks = {c.id for c in task.heldout_chunks}
    assert train and heldout and recall
    assert all(p.meta["book"] == "open" and p.meta["chunk_id"] not in heldout_chunks for p in train)
    assert all(p.meta["book"] == "open" and p.meta["chunk_id"] in heldout_chunks for p in heldout)
    assert all(p.meta["book"] == "closed" and p.split == "heldout_paraphrase" for p in recall)
    trained = {p.meta["question"] for p in train}
    assert not trained & {p.meta["question"] for p in recall}  # a recall wording is never trained on
    assert {p.meta["fact"] for p in recall} <= {p.meta["fact"] for p in train}  # ... but its fact is
    assert all(p.reference in DOCUMENT.replace("\n", " ") for p in train + heldout + recall)
    assert task.stats["facts_kept"] == len({p.meta["fact"] for p in train + heldout})


def test_a_document_without_facts_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "poem.md").write_text("The sea is calm tonight. The tide is full, the moon lies fair.\n" * 3)
    task = DocumentsTask(DocumentsSourceConfig(path=str(tmp_path), chunk_chars=200, overlap_chars=0), ScriptedEngine(), BagOfWords())
    with pytest.raises(Exception, match="no fact found in 1 chunk "):
        task.build(10, 10, seed=0)


def test_span_grading_needs_no_model(tmp_path: Path) -> None:
    task = _task(tmp_path)
    engine = task.engine
    prompt = task.build(100, 100, seed=0)[0][0]
    results = format_results([task.heldout_chunks[0]])
    assert task.verify(prompt, f"<search>q</search>{results}It was {prompt.reference}.") == 1.0
    assert task.verify(prompt, "It was 1 pound.") == 0.0
    assert task.verify(prompt, "") == 0.0
    assert task.verify(prompt, f"<output>{prompt.reference}</output>") == 0.0  # made-up markup is no answer
    # A search call written after the searches ran out is cut from the answer, not graded as part of it.
    assert task.verify(prompt, f"{results}{prompt.reference}\n<search>more</search>") == 1.0
    assert engine.scored == []  # no yes/no question was put to a model


def test_a_verified_transcript_trains_the_answer_with_results_masked_and_closed_book(tmp_path: Path) -> None:
    task = _task(tmp_path)
    train, _ = task.build(100, 100, seed=0)
    prompt = train[0]
    opening = f"<search>{prompt.meta['question']}</search>"
    results = format_results([task.train_chunks[0]])
    text = f"{opening}{results}About {prompt.reference}."
    example = SFTExample("s1", prompt.id, list(prompt.messages), text, 10.0)
    made = task.training_examples(example, prompt)
    transcript = made[0]
    kept = "".join(
        ch for i, ch in enumerate(text) if not any(a <= i < b for a, b in transcript.untrained)
    )
    assert kept == f"About {prompt.reference}."  # the runner's call and the results carry no loss
    wordings = task.train_wordings[prompt.meta["fact"]]
    assert [m.messages[0]["content"] for m in made[1:]] == [MEMORY_INSTRUCTION.format(question=q) for q in wordings]
    assert {m.completion for m in made[1:]} == {f"About {prompt.reference}."}


def test_shaped_examples_of_an_empty_answer_add_nothing_closed_book() -> None:
    example = SFTExample("s", "p", [{"role": "user", "content": "q"}], "<search>q</search>\n<results>\n[1] x\n</results>\n", 1.0)
    from autodidact.records import Prompt

    prompt = Prompt(id="p", task="d", split="train", messages=example.messages, reference="x", meta={"question": "q"})
    made = shaped_examples(example, prompt, {}, search_first=True)
    assert len(made) == 1 and made[0].untrained == ((0, 18), (18, len(example.completion)))  # all of it
