"""The original workflow's prompts: the model writes question and answer both about each chunk (`questions: model`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autodidact.config import DocumentsSourceConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Engine
from autodidact.records import Prompt
from autodidact.tasks.documents.asking import document_prompt
from autodidact.tasks.documents.chunks import Chunk
from autodidact.tasks.documents.qa import QAPair, filter_pairs, write_pairs


def pair_prompts(
    task: str,
    config: DocumentsSourceConfig,
    engine: Engine,
    embedder: Embedder | None,
    template: str,
    heldout_chunks: Sequence[Chunk],
    train_chunks: Sequence[Chunk],
    by_id: Mapping[str, Chunk],
    sizes: tuple[int, int],
) -> tuple[list[Prompt], list[Prompt], dict[str, int]]:
    """Training and held-out prompts from the model's own question/answer pairs, and the counts of each filter.

    Args:
        sizes: (train_size, heldout_size), taken round-robin over chunks so a cap keeps chunks diverse.
    """
    train_size, heldout_size = sizes
    written = [*heldout_chunks, *train_chunks]  # held-out first: of two duplicates the held-out one stays
    pairs, failed = write_pairs(engine, written, config.questions_per_chunk, template, f"{task}: writing questions")
    kept, dropped = filter_pairs(pairs, {c.id: c.text for c in written}, embedder)
    heldout_ids = {c.id for c in heldout_chunks}
    book = "open" if config.search else "closed"

    def prompts(split, chosen: list[QAPair]) -> list[Prompt]:
        return [
            document_prompt(
                task, split, i, p.question, p.answer, chunk_id=p.chunk_id, source=by_id[p.chunk_id].source, book=book
            )
            for i, p in enumerate(chosen)
        ]

    heldout = prompts("heldout", round_robin([p for p in kept if p.chunk_id in heldout_ids])[:heldout_size])
    train = prompts("train", round_robin([p for p in kept if p.chunk_id not in heldout_ids])[:train_size])
    made = {
        "failed_requests": failed, "pairs_written": len(pairs), "pairs_kept": len(kept),
        **{f"dropped_{rule}": count for rule, count in dropped.items()},
        "train_prompts": len(train), "heldout_prompts": len(heldout),
    }  # fmt: skip
    return train, heldout, made


def round_robin(pairs: list[QAPair]) -> list[QAPair]:
    """Pairs reordered as first pair of every chunk, then second of every chunk, ...: a cap keeps chunks diverse."""
    rank: dict[str, int] = {}
    keyed = []
    for position, pair in enumerate(pairs):
        rank[pair.chunk_id] = rank.get(pair.chunk_id, -1) + 1
        keyed.append((rank[pair.chunk_id], position, pair))
    return [pair for *_, pair in sorted(keyed)]
