"""The document task: questions the model writes about a folder of documents, answered with a search tool.

This is the original AutoDidact workflow: the model reads chunks of a
document and writes question/answer pairs about them; it then answers those
questions by searching the document; its answers are graded against its own
reference answers. Nothing is labelled by a person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from autodidact.config import DocumentsSourceConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Completion, Engine, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.records import Prompt, SFTExample
from autodidact.tasks.documents.answer_first import fact_prompts
from autodidact.tasks.documents.asking import (
    TOOL_INSTRUCTION,
    answer_by_book,
    shaped_examples,
)
from autodidact.tasks.documents.chunks import Chunk, chunk_documents, split_chunks, spread
from autodidact.tasks.documents.grading import model_verdicts, span_verdict
from autodidact.tasks.documents.pairs import pair_prompts
from autodidact.tasks.documents.qa import DEFAULT_QA_PROMPT
from autodidact.tasks.documents.reading import load_documents
from autodidact.tasks.documents.search import (
    SearchIndex,
    SearchStats,
    format_results,
)

log = logging.getLogger(__name__)


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
        self._recall: list[Prompt] = []  # answer-first: the closed-book recall set `build` made
        self.train_wordings: dict[str, list[str]] = {}  # fact id -> its training questions
        if config.search:  # the task is `Responds` and `OffersSearch` (tasks.base) only with the tool on
            self.respond = self._respond
            self.search_tool = self._search_tool
            self.tool_prompt = self._tool_prompt
            self.max_tool_calls = config.max_turns  # searches GRPO lets the model make per completion

    # --- prompts -------------------------------------------------------------

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Chunk the documents, split the chunks, and turn them into training and held-out questions.

        The split is over chunks: held-out questions come only from held-out
        chunks, and training questions are written from training chunks with
        the overlap text they share with a held-out chunk cut off, so no
        held-out answer is in a training question's chunk. With answer-first
        questions the closed-book recall set is made too (`build_paraphrased`).

        Raises:
            AutodidactError: no readable document, no fact found (answer-first), or no training question
                survived the filters.
        """
        documents, chunks, used, cleared = self._chunk(seed)
        by_id = {c.id: c for c in chunks}
        counts = {
            "documents": len(documents), "chunks": len(chunks),
            "chunks_used": len(used), "train_chunks": len(self.train_chunks),
            "heldout_chunks": len(self.heldout_chunks),
            "trimmed_chunks": sum(c.text != by_id[c.id].text for c in self.train_chunks), "cleared_chunks": cleared,
        }  # fmt: skip
        if self.config.questions == "answer_first":
            train, heldout, made = self._build_facts(by_id, train_size, heldout_size, seed)
        else:
            chunks_of = (self.heldout_chunks, self.train_chunks)
            sizes = (train_size, heldout_size)
            train, heldout, made = pair_prompts(
                self.name, self.config, self.engine, self.embedder, self.template, *chunks_of, by_id, sizes
            )
        self.stats = counts | made
        log.info("documents '%s': %s", self.name, ", ".join(f"{k} {v}" for k, v in self.stats.items()))
        if not train:
            raise AutodidactError(
                f"documents '{self.name}': no usable training question from {len(self.train_chunks)} chunks "
                f"({', '.join(f'{k} {v}' for k, v in made.items() if v)}); use a stronger model, more chunks "
                "(max_chunks) or other documents."
            )
        if heldout_size and not heldout:
            log.warning("documents '%s': no held-out question survived; raise heldout_ratio or max_chunks.", self.name)
        self._learn_wordings(train)
        return train, heldout

    def _build_facts(
        self, by_id: dict[str, Chunk], train_size: int, heldout_size: int, seed: int
    ) -> tuple[list[Prompt], list[Prompt], dict[str, int]]:
        """Answer-first: spans of the chunks as answers, the model's wordings as questions (`answer_first`)."""
        sources = {c.id: c.source for c in by_id.values()}
        made = fact_prompts(
            self.name, self.config, self.engine, self.embedder, self.heldout_chunks, self.train_chunks, sources,
            (train_size, heldout_size), seed,
        )  # fmt: skip
        if not made.stats["facts_found"]:
            chunks = f"{len(by_id)} chunk" + ("" if len(by_id) == 1 else "s")
            raise AutodidactError(
                f"documents '{self.name}': no fact found in {chunks} (answer-first questions need "
                "numbers with their units, dates or names in running text); set the source's questions to 'model', "
                "or give documents with such facts."
            )
        self._recall = made.recall
        return made.train, made.heldout, made.stats

    def build_paraphrased(self, train_size: int, heldout_size: int, size: int, seed: int) -> list[Prompt]:
        """The closed-book recall set made by `build` (split heldout_paraphrase), at most `size` (a hook).

        Answer-first only: one model-written wording of each training chunk's fact, never trained on, asked
        without search. The original workflow (`questions: model`) has none.
        """
        return self._recall[:size]

    def _learn_wordings(self, prompts: Sequence[Prompt]) -> None:
        """Remember each fact's training questions: a verified answer is trained closed-book in all of them."""
        self.train_wordings = {}
        for p in prompts:
            if p.split == "train" and "fact" in p.meta:
                self.train_wordings.setdefault(p.meta["fact"], []).append(p.meta["question"])

    def _chunk(self, seed: int) -> tuple[list[tuple[str, str]], list[Chunk], list[Chunk], int]:
        """Read and chunk the documents, index every chunk for search, and split the used ones (deterministic).

        Returns:
            (the documents, all chunks, the chunks used, how many training chunks were cleared); the split is
            left in `heldout_chunks` and `train_chunks`, the index in `index`.
        """
        cfg = self.config
        documents = load_documents(cfg.path, max_file_mb=cfg.max_file_mb)
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
        self._learn_wordings(prompts)
        log.info("documents '%s': search index rebuilt from %d chunks for a resumed run", self.name, len(chunks))

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
        return answer_by_book(
            engine, prompts, params, desc, self.index, (cfg.search_top_k, cfg.max_turns), self.search_stats,
            self.search_first,
        )  # fmt: skip

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

    # --- grading and training ----------------------------------------------

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """1.0 if the response's final answer states the reference's fact, 0.0 if not, None if ungradable."""
        return self.verify_batch([prompt], [response])[0]

    def verify_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float | None]:
        """Grade answers: by span match (`grading: span`, no model) or by the model's yes/no (`grading: model`)."""
        if self.config.grading == "span":
            return [span_verdict(p, r) for p, r in zip(prompts, responses, strict=True)]
        return model_verdicts(self.verifier_engine, prompts, responses, self.name)

    def training_examples(self, example: SFTExample, prompt: Prompt) -> list[SFTExample]:
        """A verified answer as training: its transcript, results masked, and closed-book (`ShapesTraining` hook)."""
        return shaped_examples(example, prompt, self.train_wordings, self.search_first)
