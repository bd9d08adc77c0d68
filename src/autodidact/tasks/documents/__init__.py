"""Documents as a task source: the model writes questions about chunks of a folder and answers them by searching it."""

from __future__ import annotations

from autodidact.tasks.documents.chunks import (
    Chunk,
    chunk_documents,
    chunk_spans,
    chunk_text,
    split_chunks,
    spread,
)
from autodidact.tasks.documents.qa import QAPair, answer_supported, filter_pairs, parse_qa, write_pairs
from autodidact.tasks.documents.reading import DocumentsRead, load_documents, read_documents
from autodidact.tasks.documents.search import SearchIndex, SearchStats, answer_with_search, final_answer
from autodidact.tasks.documents.task import DocumentsTask

__all__ = [
    "Chunk",
    "DocumentsRead",
    "DocumentsTask",
    "QAPair",
    "SearchIndex",
    "SearchStats",
    "answer_supported",
    "answer_with_search",
    "chunk_documents",
    "chunk_spans",
    "chunk_text",
    "filter_pairs",
    "final_answer",
    "load_documents",
    "parse_qa",
    "read_documents",
    "split_chunks",
    "spread",
    "write_pairs",
]
