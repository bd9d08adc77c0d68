"""Answer-first prompts: facts of the chunks, their wordings, and the three sets they are asked in.

- **train** (open book with the search tool): every wording of a training
  chunk's fact but the one held out for recall;
- **heldout** (open book): the rule-written question of each fact of a
  held-out chunk: *open-book reading*, can the model look up what it never
  trained on;
- **heldout_paraphrase** (closed book, no search): one model-written wording
  of each training chunk's fact that has two or more wordings, never trained
  on: *closed-book recall*, does the model now know what its documents say.

A fact with a single wording trains but is not in the recall set: there is no
second wording to ask it in. The reference of every prompt is the span, taken
from the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autodidact.config import DocumentsSourceConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Engine
from autodidact.records import PARAPHRASE_SPLIT, Prompt, Split
from autodidact.tasks.documents.asking import Book, document_prompt
from autodidact.tasks.documents.chunks import Chunk, spread
from autodidact.tasks.documents.facts import Fact, find_facts
from autodidact.tasks.documents.questions import Wordings, write_wordings


@dataclass
class FactPrompts:
    """The three prompt sets, and counts of what was found, written and dropped."""

    train: list[Prompt] = field(default_factory=list)
    heldout: list[Prompt] = field(default_factory=list)
    recall: list[Prompt] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def chunk_facts(chunks: Sequence[Chunk], per_chunk: int, limit: int | None) -> list[Fact]:
    """Up to `per_chunk` facts of every chunk, in chunk order, at most `limit` in all (evenly spread)."""
    return spread([f for c in chunks for f in find_facts(c.id, c.text, per_chunk)], limit)


def fact_prompts(
    task: str,
    config: DocumentsSourceConfig,
    engine: Engine,
    embedder: Embedder | None,
    heldout_chunks: Sequence[Chunk],
    train_chunks: Sequence[Chunk],
    sources: Mapping[str, str],
    sizes: tuple[int, int],
    seed: int,
) -> FactPrompts:
    """Find the facts, have the model word them, and make the train / open-book / closed-book prompts.

    Args:
        sources: each chunk id's file name.
        sizes: (train_size, heldout_size): caps on the training prompts and on each held-out set, taken
            round-robin over facts so a cap keeps as many facts as it can.
    """
    train_size, heldout_size = sizes
    heldout_facts = chunk_facts(heldout_chunks, config.questions_per_chunk, None)
    train_facts = chunk_facts(train_chunks, config.questions_per_chunk, config.max_facts)
    facts = heldout_facts + train_facts  # held-out first: of two near-duplicate facts the held-out one stays
    wordings, dropped, failed = write_wordings(
        engine, facts, config.wordings - 1, embedder, seed, desc=f"{task}: writing questions"
    )
    heldout_ids = {c.id for c in heldout_chunks}
    book = "open" if config.search else "closed"
    out = FactPrompts()
    train_rows: list[tuple[int, str, Wordings, str]] = []  # (wording rank, question, wordings, fact id)
    for n, w in enumerate(wordings):
        fact_id = f"f{n:05d}"
        f = w.fact
        if f.chunk_id in heldout_ids:
            out.heldout.append(_prompt(task, "heldout", len(out.heldout), w.questions[0], f, sources, book, fact_id))
            continue
        trained = w.questions[:-1] if w.by_model else w.questions
        if w.by_model:
            out.recall.append(
                _prompt(task, PARAPHRASE_SPLIT, len(out.recall), w.questions[-1], f, sources, "closed", fact_id)
            )
        train_rows += [(rank, q, w, fact_id) for rank, q in enumerate(trained)]
    train_rows.sort(key=lambda row: row[0])  # every fact's first wording, then every second one, ...
    out.train = [
        _prompt(task, "train", i, q, w.fact, sources, book, fact_id)
        for i, (_, q, w, fact_id) in enumerate(train_rows[:train_size])
    ]
    out.heldout, out.recall = out.heldout[:heldout_size], out.recall[:heldout_size]
    kinds = Counter(w.fact.kind for w in wordings)
    out.stats = {
        "facts_found": len(facts), "facts_kept": len(wordings), "failed_requests": failed,
        "model_wordings": sum(len(w.by_model) for w in wordings),
        **{f"dropped_{rule}": count for rule, count in dropped.items()},
        **{f"facts_{kind}": count for kind, count in sorted(kinds.items())},
        "train_prompts": len(out.train), "heldout_prompts": len(out.heldout), "recall_prompts": len(out.recall),
    }  # fmt: skip
    return out


def _prompt(
    task: str, split: Split, i: int, question: str, fact: Fact, sources: Mapping[str, str], book: Book, fact_id: str
) -> Prompt:
    return document_prompt(
        task,
        split,
        i,
        question,
        fact.span,
        chunk_id=fact.chunk_id,
        source=sources[fact.chunk_id],
        book=book,
        fact=fact_id,
    )
