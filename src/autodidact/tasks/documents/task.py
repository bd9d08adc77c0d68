"""The document task: questions the model writes about a folder of documents, answered with a search tool.

This is the original AutoDidact workflow: the model reads chunks of a
document and writes question/answer pairs about them; it then answers those
questions by searching the document; its answers are graded against its own
reference answers. Nothing is labelled by a person.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from autodidact.config import DocumentsSourceConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Completion, Engine, EngineError, SamplingParams, request_error
from autodidact.errors import AutodidactError
from autodidact.quoting import BEGIN, END, fence
from autodidact.records import Prompt, Split
from autodidact.tasks.documents.chunks import Chunk, chunk_documents, load_documents, split_chunks, spread
from autodidact.tasks.documents.qa import DEFAULT_QA_PROMPT, QAPair, filter_pairs, write_pairs
from autodidact.tasks.documents.search import (
    SearchIndex,
    SearchStats,
    answer_with_search,
    final_answer,
    format_results,
)

log = logging.getLogger(__name__)

_LOOKUP_INSTRUCTION = (
    "Answer the question about the document. To look something up, {how} and the "
    "matching passages of the document will follow. Then give a short answer.\n\nQuestion: {{question}}"
)
SEARCH_INSTRUCTION = _LOOKUP_INSTRUCTION.format(how="write <search>your query</search>")
# GRPO: TRL runs the model's calls of the `search` function itself (the chat template's tool calls), not <search> tags.
TOOL_INSTRUCTION = _LOOKUP_INSTRUCTION.format(how="call the search tool with a query")
MEMORY_INSTRUCTION = "Answer the question from what you know, in one short sentence.\n\nQuestion: {question}"

# The proposed answer is fenced (as in the judges' prompts) so it cannot write its own verdict.
VERIFY_PROMPT = """Question: {question}
Reference answer: {reference}
Proposed answer:
{begin}
{proposed}
{end}

Does the proposed answer state the same fact as the reference? Answer yes or no."""
VERIFY_PREFIX = "Answer:"
VERIFY_CHOICES = (" yes", " no")
MIN_VERDICT_MASS = 1e-4  # below this P(yes) + P(no) the model did not answer the question asked: no verdict


def normalise(text: str) -> str:
    """Lowercase words and numbers only, for the exact-match shortcut."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class DocumentsTask:
    """Questions about a document folder, with the model's own answers as references.

    After `build`, `stats` counts documents, chunks (used, held out, training,
    trimmed of held-out overlap, cleared: trimmed too short to use), pairs
    written, kept and dropped per filter, and prompts; `search_stats` counts
    how the model used the search tool over every `respond` call.

    Args:
        config: the source's settings.
        engine: the model that writes the question/answer pairs and grades answers.
        embedder: embeds chunks for the search tool and questions for the duplicate filter
            (None: no search, exact-repeat filtering only).
        verifier_engine: grades answers instead of `engine` (an external verifier).
        search_first: with search, run the question as the first search for the model
            (for a model that does not call the tool on its own; see `answer_with_search`).
    """

    def __init__(
        self,
        config: DocumentsSourceConfig,
        engine: Engine,
        embedder: Embedder | None,
        verifier_engine: Engine | None = None,
        search_first: bool = False,
    ) -> None:
        if engine is None:
            raise AutodidactError(f"documents '{config.name}': the source needs the model to write its questions.")
        template = config.qa_prompt or DEFAULT_QA_PROMPT
        missing = [p for p in ("{chunk}", "{n}") if p not in template]
        if missing:
            raise AutodidactError(f"documents '{config.name}': qa_prompt lacks {' and '.join(missing)}; add it.")
        if config.search and embedder is None:
            raise AutodidactError(
                f"documents '{config.name}': the search tool needs a sentence embedder; set the embedder to "
                "'default' or the source's search to false."
            )
        self.config = config
        self.name = config.name
        self.engine = engine
        self.embedder = embedder
        self.verifier_engine = verifier_engine or engine
        self.template = template
        self.search_first = search_first
        self.index: SearchIndex | None = None
        self.heldout_chunks: list[Chunk] = []  # as split by the last build; training chunks trimmed of held-out text
        self.train_chunks: list[Chunk] = []
        self.stats: dict[str, int] = {}
        self.search_stats = SearchStats()
        if config.search:  # the task is `Responds` and `OffersSearch` (tasks.base) only with the tool on
            self.respond = self._respond
            self.search_tool = self._search_tool
            self.tool_prompt = self._tool_prompt
            self.max_tool_calls = config.max_turns  # searches GRPO lets the model make per completion

    # --- prompts -------------------------------------------------------------

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Chunk the documents, split the chunks, and turn the model's question/answer pairs into prompts.

        The split is over chunks: held-out questions come only from held-out
        chunks, and training questions are written from training chunks with
        the overlap text they share with a held-out chunk cut off, so no
        held-out answer is in a training question's chunk.

        Raises:
            AutodidactError: no readable document, or no training question survived the filters.
        """
        cfg = self.config
        documents, chunks, used, cleared = self._chunk(seed)
        heldout_chunks, train_chunks = self.heldout_chunks, self.train_chunks
        written = heldout_chunks + train_chunks  # held-out first: of two duplicate questions, the held-out one stays
        desc = f"{self.name}: writing questions"
        pairs, failed = write_pairs(self.engine, written, cfg.questions_per_chunk, self.template, desc)
        kept, dropped = filter_pairs(pairs, {c.id: c.text for c in written}, self.embedder)
        heldout_ids = {c.id for c in heldout_chunks}
        by_id = {c.id: c for c in chunks}
        heldout_pairs = _round_robin([p for p in kept if p.chunk_id in heldout_ids])[:heldout_size]
        train_pairs = _round_robin([p for p in kept if p.chunk_id not in heldout_ids])[:train_size]
        train = [self._prompt("train", i, p, by_id[p.chunk_id].source) for i, p in enumerate(train_pairs)]
        heldout = [self._prompt("heldout", i, p, by_id[p.chunk_id].source) for i, p in enumerate(heldout_pairs)]
        self.stats = {
            "documents": len(documents), "chunks": len(chunks),
            "chunks_used": len(used), "train_chunks": len(train_chunks), "heldout_chunks": len(heldout_chunks),
            "trimmed_chunks": sum(c.text != by_id[c.id].text for c in train_chunks), "cleared_chunks": cleared,
            "failed_requests": failed, "pairs_written": len(pairs),
            "pairs_kept": len(kept), **{f"dropped_{rule}": count for rule, count in dropped.items()},
            "train_prompts": len(train), "heldout_prompts": len(heldout),
        }  # fmt: skip
        log.info("documents '%s': %s", self.name, ", ".join(f"{k} {v}" for k, v in self.stats.items()))
        if not train:
            raise AutodidactError(
                f"documents '{self.name}': no usable training question from {len(train_chunks)} chunks "
                f"({len(pairs)} written, dropped: {dict(dropped)}); use a stronger model, a clearer qa_prompt "
                "or more chunks (max_chunks)."
            )
        if heldout_size and not heldout:
            log.warning("documents '%s': no held-out question survived; raise heldout_ratio or max_chunks.", self.name)
        return train, heldout

    def _chunk(self, seed: int) -> tuple[list[tuple[str, str]], list[Chunk], list[Chunk], int]:
        """Read and chunk the documents, index every chunk for search, and split the used ones (deterministic).

        Returns:
            (the documents, all chunks, the chunks used, how many training chunks were cleared); the split is
            left in `heldout_chunks` and `train_chunks`, the index in `index`.
        """
        cfg = self.config
        documents = load_documents(cfg.path)
        chunks = chunk_documents(documents, cfg.chunk_chars, cfg.overlap_chars)
        self.index = SearchIndex(chunks, self.embedder) if cfg.search and self.embedder is not None else None
        used = spread(chunks, cfg.max_chunks)
        self.heldout_chunks, self.train_chunks, cleared = split_chunks(used, dict(documents), cfg.heldout_ratio, seed)
        return documents, chunks, used, cleared

    def restore(self, prompts: Sequence[Prompt], seed: int) -> None:
        """What `build` made beside its prompts (the search index, the chunk split), for a resumed run (a hook).

        The store holds the prompts, not the index: the documents are read,
        chunked and embedded again as `build` did, so a resumed run searches
        the index of the original run, and the model writes no question again.

        Raises:
            AutodidactError: the documents changed since the run wrote `prompts`: a prompt's chunk is gone,
                moved to another file, or on the other side of the held-out split.
        """
        _, chunks, _, _ = self._chunk(seed)
        by_id = {c.id: c for c in chunks}
        heldout_ids = {c.id for c in self.heldout_chunks}
        for p in prompts:
            chunk = by_id.get(p.meta.get("chunk_id"))
            moved = chunk is None or chunk.source != p.meta.get("source")
            if moved or (p.split == "heldout") != (chunk.id in heldout_ids):
                raise AutodidactError(
                    f"documents '{self.name}': the documents under '{self.config.path}' changed since this run "
                    f"wrote its questions (prompt '{p.id}' was written from chunk '{p.meta.get('chunk_id')}'), so "
                    "its search index cannot be rebuilt; put the documents back as they were, or start a new run."
                )
        log.info("documents '%s': search index rebuilt from %d chunks for a resumed run", self.name, len(chunks))

    def _prompt(self, split: Split, i: int, pair: QAPair, source: str) -> Prompt:
        instruction = SEARCH_INSTRUCTION if self.config.search else MEMORY_INSTRUCTION
        return Prompt(
            id=f"{self.name}-{split}-{i:04d}",
            task=self.name,
            split=split,
            messages=[{"role": "user", "content": instruction.format(question=pair.question)}],
            reference=pair.answer,
            meta={"chunk_id": pair.chunk_id, "source": source, "question": pair.question},
        )

    # --- answering -----------------------------------------------------------

    def _respond(
        self, engine: Engine, prompts: Sequence[Prompt], params: SamplingParams, desc: str
    ) -> list[list[Completion]]:
        """Answer with the search tool (the `respond` hook; set only when config.search).

        The index holds ALL chunks, held-out ones included: it is the document
        the model is allowed to consult, like a reference book in an exam.
        Only the questions are held out; what is measured is whether the
        model learned to find and state the answer, not whether it memorised it.
        """
        if self.index is None:
            raise AutodidactError(f"documents '{self.name}': build() (or restore()) must run before answering.")
        cfg = self.config
        opening = [p.meta.get("question", p.text) for p in prompts] if self.search_first else None
        return answer_with_search(
            engine, prompts, params, self.index, cfg.search_top_k, cfg.max_turns, desc, self.search_stats, opening
        )

    def _search_tool(self) -> Callable[[str], str]:
        """The search index as a typed function with a docstring, for TRL's GRPOTrainer to call (`search_tool` hook).

        TRL builds the tool's schema from the signature and docstring, parses
        the model's calls and appends what it returns as the tool's message;
        the results read as in the text protocol.
        """
        # Checked here, not in the call: TRL hands a tool's exception to the model as its result and goes on.
        if self.index is None:
            raise AutodidactError(f"documents '{self.name}': build() (or restore()) must run before searching.")
        index, top_k = self.index, self.config.search_top_k

        def search(query: str) -> str:
            """Search the document for the passages that best match a query.

            Args:
                query: What to look up, in a few words.
            """
            return format_results(index.search(query, top_k)).strip()

        return search

    def _tool_prompt(self, prompt: Prompt) -> Prompt:
        """`prompt` asking for the search tool as a function call (GRPO), not by `<search>` tags (a hook)."""
        question = prompt.meta.get("question", prompt.text)
        return replace(prompt, messages=[{"role": "user", "content": TOOL_INSTRUCTION.format(question=question)}])

    # --- grading -------------------------------------------------------------

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """1.0 if the response's final answer states the reference's fact, 0.0 if not, None if ungradable."""
        return self.verify_batch([prompt], [response])[0]

    def verify_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float | None]:
        """Grade many answers with one batched yes/no scoring pass.

        An answer equal to the reference once normalised passes without the
        model; an empty answer fails. Otherwise the model is asked whether the
        answer states the reference's fact: P(" yes") over P(" yes") + P(" no")
        at least 0.5 passes. None when the engine failed or put almost no
        probability on either word.
        """
        verdicts: list[float | None] = [None] * len(prompts)
        ask: list[int] = []
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            answer = final_answer(response)
            if prompt.reference is None:
                continue
            if normalise(answer) == normalise(str(prompt.reference)):
                verdicts[i] = 1.0
            elif not normalise(answer):
                verdicts[i] = 0.0
            else:
                ask.append(i)
        if not ask:
            return verdicts
        engine = self.verifier_engine
        texts = [
            engine.render([{"role": "user", "content": self._verify_request(prompts[i], responses[i])}]) + VERIFY_PREFIX
            for i in ask
        ]
        try:
            table = engine.continuation_logprobs(texts, list(VERIFY_CHOICES), desc=f"{self.name}: verifying")
        except (EngineError, ValueError) as exc:  # ValueError: the tokenizer cannot split the choices after the prompt
            log.warning("documents '%s': the verifier failed: %s", self.name, exc)
            return verdicts
        for i, row in zip(ask, table, strict=True):
            yes, no = (math.exp(x) for x in row)
            if request_error(row) is None and yes + no >= MIN_VERDICT_MASS:
                verdicts[i] = 1.0 if yes / (yes + no) >= 0.5 else 0.0
        return verdicts

    @staticmethod
    def _verify_request(prompt: Prompt, response: str) -> str:
        question = prompt.meta.get("question", prompt.text)
        proposed = fence(final_answer(response))
        return VERIFY_PROMPT.format(
            question=question, reference=prompt.reference, proposed=proposed, begin=BEGIN, end=END
        )


def _round_robin(pairs: list[QAPair]) -> list[QAPair]:
    """Pairs reordered as first pair of every chunk, then second of every chunk, ...: a cap keeps chunks diverse."""
    rank: dict[str, int] = {}
    keyed = []
    for position, pair in enumerate(pairs):
        rank[pair.chunk_id] = rank.get(pair.chunk_id, -1) + 1
        keyed.append((rank[pair.chunk_id], position, pair))
    return [pair for *_, pair in sorted(keyed)]
