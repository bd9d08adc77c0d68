"""The model writes question/answer pairs grounded in a chunk, and bad pairs are filtered out.

Filters, cheapest first, each counted:

- `empty`: a pair with no question or no answer text.
- `malformed`: a "question" that does not end with "?" (a heading, a
  number) or an "answer" that does (a second question: small models list
  questions instead of answering them).
- `too_long`: an answer over `MAX_ANSWER_WORDS` words; a reference answer
  should be a fact, not an essay, or grading it becomes a judgment call.
- `unsupported`: the answer's content words (lowercased, stopwords removed,
  numbers kept, a plural "s" ignored) must mostly (`MIN_SUPPORT`) appear in
  the chunk. A cheap, lexical stand-in for "grounded in the chunk": it
  catches invented answers, not paraphrases of wrong facts.
- `duplicate`: a question whose embedding is at least `DUPLICATE_SIMILARITY`
  cosine-similar to an earlier kept one (exact normalised repeats without an embedder).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from autodidact.embeddings import Embedder, near_duplicates
from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.tasks.documents.chunks import Chunk

DEFAULT_QA_PROMPT = """Passage:
{chunk}

Write {n} questions that can be answered from facts stated in the passage above, each with a short answer \
copied from the passage. Each question must make sense on its own, without the passage. Write each pair on two lines:
Q: <question>
A: <answer>"""

QA_PREFIX = "Q:"  # the reply is started for the model, so even a small model starts in the format
TOKENS_PER_PAIR = 64  # generation budget per requested pair
MAX_ANSWER_WORDS = 40
MIN_SUPPORT = 0.6
DUPLICATE_SIMILARITY = 0.9
FILTERS = ("empty", "malformed", "too_long", "unsupported", "duplicate")

# "Q:", "Q1:", "Question:", "**Q:**", "1. Q:" (and the same for A).
_MARKER = re.compile(r"^\s*(?:\d+[.)]\s*)?\**\s*(Q|A|Question|Answer)\s*\d*\s*\**\s*[:.]\s*\**\s*(.*)$", re.IGNORECASE)
_INLINE_ANSWER = re.compile(r"\s\**(?:A|Answer)\s*\**\s*:\s*\**\s*", re.IGNORECASE)
_QUESTION_END = re.compile(r"\?[\"'”’)\]*\s]*$")  # "?" closing the text, perhaps inside quotes or brackets
_NUMBERING = re.compile(r"^\d{1,2}[.)]\s+")  # "1. " before a question: list numbering, not text
_WORD = re.compile(r"[a-z]+|\d+(?:[.,:/]\d+)*")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here hers
    him his how i if in into is it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you your
    yours""".split()
)


class QAPair(NamedTuple):
    question: str
    answer: str
    chunk_id: str


def qa_request(chunk: str, n: int, template: str = DEFAULT_QA_PROMPT) -> str:
    """The user message asking for `n` pairs about `chunk`.

    Placeholders are replaced literally (not `str.format`), so a template or a
    chunk may contain other braces (JSON, LaTeX) safely.
    """
    return template.replace("{n}", str(n)).replace("{chunk}", chunk)


def parse_qa(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from lines `Q: ...` / `A: ...`; malformed lines are ignored.

    An answer with no question before it, or a question never answered, makes
    no pair. A marker with nothing after it takes the next plain line.
    `Q: ... A: ...` on one line also counts; list numbering ("1. ") is dropped.
    """
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    waiting: str | None = None  # "Q" or "A": a marker whose text is on the next line
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match is None:
            body = _NUMBERING.sub("", line.strip())
            if waiting == "Q" and body:
                question, waiting = body, None
            elif waiting == "A" and body and question is not None:
                pairs.append((question, body))
                question, waiting = None, None
            continue
        kind, body = match.group(1)[0].upper(), _NUMBERING.sub("", match.group(2).strip().strip("*").strip())
        if kind == "Q":
            inline = _INLINE_ANSWER.split(body, maxsplit=1)
            if len(inline) == 2 and inline[0].strip() and inline[1].strip():
                pairs.append((inline[0].strip(), inline[1].strip()))
                question, waiting = None, None
            else:
                question, waiting = (body or None), (None if body else "Q")
        elif question is not None:
            if body:
                pairs.append((question, body))
                question, waiting = None, None
            else:
                waiting = "A"
    return pairs


def content_words(text: str) -> set[str]:
    """Lowercased words without stopwords, numbers kept, a plural "s" dropped."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        words.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return words


def answer_supported(answer: str, chunk: str, min_share: float = MIN_SUPPORT) -> bool:
    """Whether at least `min_share` of the answer's content words appear in `chunk`.

    An answer with no content word ("yes", "it") is not supported: it states no checkable fact.
    """
    words = content_words(answer)
    return bool(words) and len(words & content_words(chunk)) >= min_share * len(words)


def write_pairs(
    engine: Engine, chunks: Sequence[Chunk], n: int, template: str = DEFAULT_QA_PROMPT, desc: str = "writing questions"
) -> tuple[list[QAPair], int]:
    """Up to `n` parsed pairs per chunk, greedy-decoded so the same model writes the same pairs.

    Returns:
        The pairs in chunk order, and how many requests failed (engine errors).
    """
    prompts = [
        engine.render([{"role": "user", "content": qa_request(c.text, n, template)}]) + QA_PREFIX for c in chunks
    ]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=TOKENS_PER_PAIR * n)
    outputs = engine.generate(prompts, params, desc=desc)
    pairs: list[QAPair] = []
    failed = 0
    for chunk, completions in zip(chunks, outputs, strict=True):
        if request_error(completions):
            failed += 1
            continue
        parsed = parse_qa(QA_PREFIX + " " + completions[0].text)
        pairs += [QAPair(q, a, chunk.id) for q, a in parsed[:n]]
    return pairs, failed


def filter_pairs(
    pairs: Sequence[QAPair],
    chunk_texts: Mapping[str, str],
    embedder: Embedder | None,
    threshold: float = DUPLICATE_SIMILARITY,
) -> tuple[list[QAPair], Counter[str]]:
    """The pairs that pass every filter (in order), and how many each filter dropped.

    Pairs come in priority order: of two duplicate questions the earlier is kept.
    """
    dropped: Counter[str] = Counter({name: 0 for name in FILTERS})
    survivors: list[QAPair] = []
    for pair in pairs:
        if not pair.question.strip() or not pair.answer.strip():
            dropped["empty"] += 1
        elif not _QUESTION_END.search(pair.question) or _QUESTION_END.search(pair.answer):
            dropped["malformed"] += 1
        elif len(pair.answer.split()) > MAX_ANSWER_WORDS:
            dropped["too_long"] += 1
        elif not answer_supported(pair.answer, chunk_texts[pair.chunk_id]):
            dropped["unsupported"] += 1
        else:
            survivors.append(pair)
    questions = [p.question for p in survivors]
    duplicates = set(
        near_duplicates(questions, threshold, embedder) if embedder is not None else _exact_repeats(questions)
    )
    dropped["duplicate"] = len(duplicates)
    return [p for i, p in enumerate(survivors) if i not in duplicates], dropped


def _exact_repeats(texts: Sequence[str]) -> list[int]:
    """Indices of texts equal to an earlier one once lowercased and stripped of punctuation."""
    seen: set[str] = set()
    repeats = []
    for i, text in enumerate(texts):
        key = " ".join(_WORD.findall(text.lower()))
        if key in seen:
            repeats.append(i)
        seen.add(key)
    return repeats
