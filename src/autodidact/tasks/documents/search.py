"""The search tool: an embedding index over the chunks, and the runner that lets the model call it.

The protocol is plain text, so any chat model can use it and the whole
exchange can be trained on. The model writes `<search>query</search>`; the
runner cuts the generation right after the first `</search>`, appends

    <results>
    [1] chunk text
    [2] chunk text
    </results>

and lets the model go on from there, for at most `max_turns` searches. The
text after the last `</results>` is the answer. A malformed call (`<search>`
never closed, or an empty query) ends the exchange: that text is taken as
the model's answer, and counted, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from autodidact.embeddings import Embedder
from autodidact.engines import Completion, Engine, SamplingParams
from autodidact.records import Prompt
from autodidact.tasks.documents.chunks import Chunk

OPEN, CLOSE = "<search>", "</search>"
RESULTS_OPEN, RESULTS_CLOSE = "<results>", "</results>"


class SearchIndex:
    """Cosine-similarity search over chunk embeddings (exact, numpy: a document corpus is small)."""

    def __init__(self, chunks: Sequence[Chunk], embedder: Embedder) -> None:
        self.chunks = list(chunks)
        self.embedder = embedder
        self.vectors = embedder.encode([c.text for c in self.chunks])  # (n_chunks, d), unit rows

    def search(self, query: str, k: int) -> list[Chunk]:
        """The `k` chunks most similar to `query`, best first (ties: document order)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Chunk]]:
        """`search` for every query, with the queries embedded in one batch (one MiniLM call, not one each)."""
        if not self.chunks or k < 1:
            return [[] for _ in queries]
        scores = self.embedder.encode(list(queries)) @ self.vectors.T  # (n_queries, n_chunks)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[self.chunks[i] for i in row] for row in best]


@dataclass
class SearchStats:
    """How the model used the tool, summed over calls of `answer_with_search`."""

    transcripts: int = 0
    searches: int = 0  # calls that were run
    malformed: int = 0  # `<search>` with no closing tag or an empty query: taken as the answer
    over_budget: int = 0  # a call written after `max_turns` searches: not run, and cut from the answer
    failed: int = 0  # transcripts ended by an engine error
    per_transcript: Counter[int] = field(default_factory=Counter)  # searches per transcript -> transcripts


def final_answer(transcript: str) -> str:
    """The text after the last `</results>` (the whole text when no search was run), up to any further call.

    A call written once the searches are used up is not run; it is no part of the answer either.
    """
    return transcript.rsplit(RESULTS_CLOSE, 1)[-1].split(OPEN, 1)[0].strip()


def format_results(chunks: Sequence[Chunk]) -> str:
    """The results block appended after a call; a closing tag inside a chunk is broken so it cannot end the block."""
    lines = [f"[{i}] {c.text.replace(RESULTS_CLOSE, '</ results>')}" for i, c in enumerate(chunks, 1)]
    return f"\n{RESULTS_OPEN}\n" + "\n".join(lines) + f"\n{RESULTS_CLOSE}\n"


@dataclass
class _Transcript:
    prompt: int  # index into the prompts
    text: str = ""
    tokens: int = 0
    searches: int = 0
    error: str | None = None
    done: bool = False


def _advance(
    state: _Transcript, completion: Completion, index: SearchIndex, k: int, max_turns: int, stats: SearchStats
) -> None:
    """Add one generated turn to a transcript: run its search call, or end it."""
    if completion.error:
        state.error, state.done = completion.error, True
        stats.failed += 1
        return
    state.tokens += completion.num_tokens
    text = completion.text
    start = text.find(OPEN)
    end = text.find(CLOSE, start + len(OPEN)) if start >= 0 else -1
    query = text[start + len(OPEN) : end].strip() if end >= 0 else ""
    if start < 0 or not query or state.searches >= max_turns:
        if start >= 0 and not query:
            stats.malformed += 1
        elif query:
            stats.over_budget += 1
        state.text, state.done = state.text + text, True
        return
    state.text += text[: end + len(CLOSE)] + format_results(index.search(query, k))
    state.searches += 1
    stats.searches += 1


def answer_with_search(
    engine: Engine,
    prompts: Sequence[Prompt],
    params: SamplingParams,
    index: SearchIndex,
    k: int,
    max_turns: int,
    desc: str = "answering with search",
    stats: SearchStats | None = None,
    opening_queries: Sequence[str] | None = None,
) -> list[list[Completion]]:
    """`params.n` transcripts per prompt, each a chain of search calls, results and a final answer.

    Every turn sends all unfinished transcripts to `engine.generate` in one
    batch (continuations as the rendered chat plus the transcript so far, one
    sample each). The engine seeds a sample by its prompt's content, so two
    samples whose transcripts are still identical would continue identically;
    the second copy of a transcript therefore goes in a call of its own with
    seed + 1 (the third with seed + 2, ...), and samples stay different.

    `opening_queries` (one per prompt, e.g. the question) runs a first search
    for the model and starts each transcript with that call and its results:
    a model that never calls the tool on its own then still answers from the
    document, and training on the transcripts shows it the call. It counts
    against `max_turns`.

    Returns:
        Completions in prompt order: text is the whole transcript (so training
        learns to search), num_tokens the tokens generated over all turns;
        text is empty and error set when a turn's request failed.
    """
    stats = stats if stats is not None else SearchStats()
    rendered = [engine.render(p.messages) for p in prompts]
    opening = [""] * len(prompts)
    if opening_queries is not None:
        found = index.search_many(opening_queries, k)
        opening = [
            f"{OPEN}{q}{CLOSE}" + format_results(chunks) for q, chunks in zip(opening_queries, found, strict=True)
        ]
        stats.searches += len(prompts) * params.n
    first = engine.generate([r + o for r, o in zip(rendered, opening, strict=True)], params, desc=desc)
    states = [
        _Transcript(prompt=i, text=opening[i], searches=int(bool(opening[i])))
        for i, completions in enumerate(first)
        for _ in completions
    ]
    for state, completion in zip(states, (c for completions in first for c in completions), strict=True):
        _advance(state, completion, index, k, max_turns, stats)
    turn = 1
    while ongoing := [s for s in states if not s.done]:
        turn += 1
        copies: dict[int, list[_Transcript]] = {}
        seen: Counter[str] = Counter()
        for state in ongoing:
            context = rendered[state.prompt] + state.text
            copies.setdefault(seen[context], []).append(state)
            seen[context] += 1
        for copy, group in sorted(copies.items()):
            turn_params = replace(params, n=1, seed=params.seed + copy)
            outputs = engine.generate(
                [rendered[s.prompt] + s.text for s in group], turn_params, desc=f"{desc} (turn {turn})"
            )
            for state, completions in zip(group, outputs, strict=True):
                _advance(state, completions[0], index, k, max_turns, stats)
    stats.transcripts += len(states)
    stats.per_transcript.update(s.searches for s in states)
    out: list[list[Completion]] = [[] for _ in prompts]
    for s in states:
        out[s.prompt].append(Completion(text="" if s.error else s.text, num_tokens=s.tokens, error=s.error))
    return out
