"""The report's Documents section: what a run learnt from its documents sources.

Per documents task, a table of both held-out accuracies per iteration, as the
evaluate stage stored them (pass rates with their 95% Wilson intervals, nothing
re-graded): open-book reading (split "heldout": questions about held-out
chunks, answered with search) and closed-book recall (split
"heldout_paraphrase", stored as paraphrase_*: held-out wordings of trained
facts, answered from memory). Then example questions with the model's final
answer at iteration 0 and at the last iteration, from the held-out answers
the evaluate stage stores every iteration (sample origin "heldout").

The store keeps no verdict per answer, only the rates, so an example's
right/wrong mark is the source's "span" rule applied again (`span_verdict`,
no model); a source graded by the model ("grading: model") shows no mark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autodidact.apps.summary import BOOKS, book_accuracy, documents_sources
from autodidact.records import PARAPHRASE_SPLIT, Prompt
from autodidact.store import RunStore
from autodidact.tasks.documents.grading import span_verdict
from autodidact.tasks.documents.search import final_answer

# The held-out split of each book's questions, in the order the examples show them.
SPLITS = {"closed": PARAPHRASE_SPLIT, "open": "heldout"}
Grade = Callable[[Prompt, str], float | None]


def accuracy_rows(rows: Sequence[Mapping], task: str) -> list[dict[str, Any]]:
    """One row per evaluated iteration: {iteration, open, closed}, each an `Accuracy` or None (not measured)."""
    return [
        {"iteration": r["iteration"], **{book: book_accuracy(r.get("tasks", {}).get(task, {}), book) for book in BOOKS}}
        for r in rows
    ]


def _answer(text: str | None, prompt: Prompt, grade: Grade | None) -> dict[str, Any] | None:
    """An answer as shown: its final answer and 'right', 'wrong' or None (not graded); None without an answer."""
    if text is None:
        return None
    verdict = grade(prompt, text) if grade is not None else None
    return {"text": final_answer(text), "mark": None if verdict is None else "right" if verdict >= 0.5 else "wrong"}


def _heldout_answers(store: RunStore, iteration: int, prompt_ids: set[str]) -> dict[str, str]:
    """prompt id -> the stored held-out answer of that iteration (the evaluate stage writes one per prompt)."""
    return {
        s.prompt_id: s.text for s in store.samples(iteration) if s.origin == "heldout" and s.prompt_id in prompt_ids
    }


def examples(
    store: RunStore, task: str, first: int, last: int, grade: Grade | None, per_book: int = 5
) -> list[dict[str, Any]]:
    """Up to `per_book` closed-book then `per_book` open-book questions with the answers at `first` and `last`.

    Deterministic: questions whose mark changed between the two iterations come first, then by prompt id.
    Each item: {book, question, reference, source, before, after}; `before`/`after` are {text, mark} or None
    (no stored answer; `after` None too when `last` is `first`).
    """
    books = {book: sorted(store.prompts(split=split, task=task), key=lambda p: p.id) for book, split in SPLITS.items()}
    ids = {p.id for prompts in books.values() for p in prompts}
    before = _heldout_answers(store, first, ids)
    after = _heldout_answers(store, last, ids) if last != first else {}
    items = []
    for book, prompts in books.items():
        shown = []
        for p in prompts:
            pair = (_answer(before.get(p.id), p, grade), _answer(after.get(p.id), p, grade))
            if pair != (None, None):
                changed = None not in pair and pair[0]["mark"] != pair[1]["mark"]
                shown.append((not changed, p.id, p, pair))
        for *_, p, (old, new) in sorted(shown, key=lambda x: x[:2])[:per_book]:
            question, source = p.meta.get("question", p.text), p.meta.get("source", "-")
            items.append(
                {
                    "book": book,
                    "question": question,
                    "reference": p.reference,
                    "source": source,
                    "before": old,
                    "after": new,
                }
            )
    return items


def documents_section(
    store: RunStore, config: Mapping, rows: Sequence[Mapping], per_book: int = 5
) -> list[dict[str, Any]]:
    """Per documents source of the run's config: {task, first, last, accuracy rows, examples}; [] without one.

    Args:
        store: the run's store.
        config: the run's saved config (a plain dict).
        rows: the run's per-iteration rows (`loop.iteration_rows`).
        per_book: examples shown per book (closed, open).
    """
    iterations = [r["iteration"] for r in rows]
    first, last = (min(iterations), max(iterations)) if iterations else (0, 0)
    section = []
    for source in documents_sources(config):
        task = str(source.get("name", "documents"))
        grade = span_verdict if source.get("grading", "span") == "span" else None
        shown = examples(store, task, first, last, grade, per_book)
        section.append(
            {"task": task, "first": first, "last": last, "accuracy": accuracy_rows(rows, task), "examples": shown}
        )
    return section
