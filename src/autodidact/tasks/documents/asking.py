"""How a document question is put to the model (with the search tool or from memory), and trained on."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from autodidact.engines import Completion, Engine, SamplingParams
from autodidact.records import Prompt, SFTExample, Split
from autodidact.tasks.documents.search import (
    CLOSE,
    OPEN,
    RESULTS_CLOSE,
    RESULTS_OPEN,
    SearchIndex,
    SearchStats,
    answer_with_search,
    final_answer,
)

_LOOKUP_INSTRUCTION = (
    "Answer the question about the document. To look something up, {how} and the "
    "matching passages of the document will follow. Then give a short answer.\n\nQuestion: {{question}}"
)
SEARCH_INSTRUCTION = _LOOKUP_INSTRUCTION.format(how="write <search>your query</search>")
# GRPO: TRL runs the model's calls of the `search` function itself (the chat template's tool calls), not <search> tags.
TOOL_INSTRUCTION = _LOOKUP_INSTRUCTION.format(how="call the search tool with a query")
MEMORY_INSTRUCTION = "Answer the question from what you know, in one short sentence.\n\nQuestion: {question}"

Book = Literal["open", "closed"]


def document_prompt(
    task: str,
    split: Split,
    i: int,
    question: str,
    reference: str,
    *,
    chunk_id: str,
    source: str,
    book: Book,
    fact: str | None = None,
) -> Prompt:
    """A question about a chunk, asked open book (answered with search) or closed book (from memory).

    `meta` keeps what the report and training read back: the bare question, the chunk and file it was
    written from, the book, and for answer-first questions the fact id its other wordings share.
    """
    instruction = SEARCH_INSTRUCTION if book == "open" else MEMORY_INSTRUCTION
    meta = {"chunk_id": chunk_id, "source": source, "question": question, "book": book}
    if fact is not None:
        meta["fact"] = fact
    return Prompt(
        id=f"{task}-{split}-{i:04d}",
        task=task,
        split=split,
        messages=[{"role": "user", "content": instruction.format(question=question)}],
        reference=reference,
        meta=meta,
    )


_RESULTS = re.compile(r"\n?" + re.escape(RESULTS_OPEN) + r".*?" + re.escape(RESULTS_CLOSE) + r"\n?", re.DOTALL)


def shaped_examples(
    example: SFTExample, prompt: Prompt, train_wordings: Mapping[str, list[str]], search_first: bool
) -> list[SFTExample]:
    """A verified answer as training: its transcript, and the answer asked closed-book.

    In the transcript only the model's own text carries loss: the search results, and the opening call the
    runner wrote with `search_first`, are `untrained`, as the original AutoDidact masked tool output. The
    final answer is also trained closed-book in every training wording of the prompt's fact (`train_wordings`;
    the prompt's own question for the original workflow), so the fact is learned, not only looked up.
    """
    text = example.completion
    untrained = [(m.start(), m.end()) for m in _RESULTS.finditer(text)]
    if search_first and text.startswith(OPEN) and CLOSE in text:
        untrained.append((0, text.index(CLOSE) + len(CLOSE)))
    made = [replace(example, untrained=tuple(sorted(untrained)))]
    answer = final_answer(text)
    if not answer:
        return made
    fact = prompt.meta.get("fact")
    questions = train_wordings.get(fact, []) if fact else [prompt.meta.get("question", prompt.text)]
    for k, question in enumerate(questions):  # an example equal to another is trained once (loop.stages.inputs)
        messages = [{"role": "user", "content": MEMORY_INSTRUCTION.format(question=question)}]
        made.append(replace(example, sample_id=f"{example.sample_id}~closed{k}", messages=messages, completion=answer))
    return made


def answer_by_book(
    engine: Engine,
    prompts: Sequence[Prompt],
    params: SamplingParams,
    desc: str,
    index: SearchIndex,
    search: tuple[int, int],
    stats: SearchStats,
    search_first: bool,
) -> list[list[Completion]]:
    """Answer closed-book prompts from memory and the others with the search tool, in prompt order.

    Args:
        search: (results per call, calls allowed).
    """
    out: list[list[Completion]] = [[] for _ in prompts]
    closed = [i for i, p in enumerate(prompts) if p.meta.get("book") == "closed"]
    if closed:  # the recall set: no search, from memory alone
        rendered = [engine.render(prompts[i].messages) for i in closed]
        answers = engine.generate(rendered, params, desc=f"{desc} (closed book)")
        for i, completions in zip(closed, answers, strict=True):
            out[i] = completions
    opened = [i for i, p in enumerate(prompts) if p.meta.get("book") != "closed"]
    if opened:
        asked = [prompts[i] for i in opened]
        opening = [p.meta.get("question", p.text) for p in asked] if search_first else None
        answers = answer_with_search(engine, asked, params, index, *search, desc, stats, opening)
        for i, completions in zip(opened, answers, strict=True):
            out[i] = completions
    return out
