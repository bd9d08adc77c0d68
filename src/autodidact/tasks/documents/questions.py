"""Answer-first questions: the model rewords a fact's rule-written question, and bad wordings are filtered out.

A fact (`facts.Fact`) is an answer span of the document with a question
written by rule around it (the "cloze": the sentence with the span replaced
by a wh-phrase). A 135M model asked to write a question *and* its answer
mostly writes further questions (4 usable pairs of 78 on an excerpt of the
Apollo 13 report); asked to reword a question, it mostly answers it. So it is
shown two worked rewordings, its reply is started with the cloze's
wh-phrase ("How many pounds"), and it only has to finish the question. What it writes is kept when it passes every
filter, each counted:

- `unfinished`: no "?" on the first line, under `MIN_WORDS` words, or a
  word trigram said twice (the model looping);
- `answered`: it states the span, or a number the cloze does not hold;
- `off_topic`: under `MIN_SHARED` of its content words appear in the fact's
  sentence (an invented detail), it shares under `MIN_SHARED_WORDS` with it
  (too little of the fact to be answerable), or it asks two things;
- `drifted`: MiniLM cosine to the cloze under `MIN_SIMILARITY` (a different question);
- `repeat`: at least `REPEAT_SIMILARITY` to the cloze or a wording kept
  before it (the same words again: nothing new to generalise over).

The answer of every wording is the span, taken from the document, so no
model writes or judges a reference.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autodidact.embeddings import Embedder, near_duplicates
from autodidact.engines import Engine, SamplingParams, request_error
from autodidact.tasks.documents.facts import Fact
from autodidact.tasks.documents.qa import content_words

# Two worked examples (not from any user document) show the form; a 135M model copies a pattern far better
# than it follows an instruction. Their words cannot leak into a kept wording: `off_topic` drops it.
REWRITE_PROMPT = (
    "Rewrite each question in other words. Keep every detail.\n\n"
    "Question: The crew reported sleeping well for the first how many days of the flight?\n"
    "Rewritten: For how many days at the start of the flight did the crew report sleeping well?\n\n"
    "Question: The cabin pressure was reduced to what value before the hatch was opened?\n"
    "Rewritten: Before the hatch was opened, to what value was the cabin pressure reduced?\n\n"
    "Question: {cloze}\nRewritten:"
)
MAX_NEW_TOKENS = 28
MIN_WORDS = 4
MIN_SHARED = 0.85
MIN_SHARED_WORDS = 4
MIN_SIMILARITY = 0.6
REPEAT_SIMILARITY = 0.95
DUPLICATE_FACT_SIMILARITY = 0.9  # two facts whose clozes are this alike ask the same thing: the later is dropped
FILTERS = ("unfinished", "answered", "off_topic", "drifted", "repeat")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Wordings:
    """A fact and the questions that ask for it: the cloze first, then the model's kept rewordings."""

    fact: Fact
    questions: tuple[str, ...]

    @property
    def by_model(self) -> tuple[str, ...]:
        return self.questions[1:]


def lead(fact: Fact) -> str:
    """The cloze's wh-phrase, capitalised ("How many pounds"): the words the span was replaced by.

    The cloze keeps the sentence around the span verbatim, so the phrase is
    what is left of it once the sentence's text before and after the span is
    taken off (case-insensitively at the start: a span that opened the
    sentence leaves a capitalised wh-phrase).
    """
    sentence, cloze = fact.sentence.rstrip(" .!"), fact.cloze.rstrip(" ?")
    at = sentence.find(fact.span)
    before, after = sentence[:at], sentence[at + len(fact.span) :]
    start = len(before) if cloze.lower().startswith(before.lower()) else 0
    end = len(cloze) - len(after) if after and cloze.endswith(after) else len(cloze)
    phrase = cloze[start:end].strip(" ,") if end > start else ""
    words = phrase.split()[:4] or cloze.split()[:2]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def rewrite_request(fact: Fact) -> str:
    """The user message asking the model to reword `fact`'s cloze."""
    return REWRITE_PROMPT.format(cloze=fact.cloze)


def _first_question(lead_text: str, generated: str) -> str | None:
    """The lead plus the generated text up to the first "?" on its first line; None without one."""
    line = (lead_text + " " + generated.lstrip()).split("\n", 1)[0]
    end = line.find("?")
    return " ".join(line[: end + 1].split()) if end >= 0 else None


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace(",", "")))


def check_wording(fact: Fact, question: str | None) -> str | None:
    """The lexical filter `question` fails (a name from FILTERS), or None if it passes them."""
    if question is None or len(question.split()) < MIN_WORDS or _repeats_itself(question):
        return "unfinished"
    if _norm(fact.span) in _norm(question) or set(_NUMBER.findall(question)) - set(_NUMBER.findall(fact.cloze)):
        return "answered"
    # The wh-phrase ("how many pounds") is given to the model, so its words do not show the fact was kept.
    words = content_words(question) - content_words(lead(fact))
    shared = len(words & content_words(fact.sentence + " " + fact.cloze))
    if shared < MIN_SHARED_WORDS or shared < MIN_SHARED * len(words) or len(_WH.findall(question)) > 1:
        return "off_topic"  # invented details, too little of the fact to be answerable, or two questions in one
    return None


_WH = re.compile(r"\b(?:how many|how long|what|who|which)\b", re.IGNORECASE)


def _repeats_itself(question: str) -> bool:
    """A word trigram said twice: a small model looping ('how many hours after ... is how many hours after')."""
    words = _norm(question).split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(set(grams)) < len(grams)


def write_wordings(
    engine: Engine,
    facts: Sequence[Fact],
    samples: int,
    embedder: Embedder | None,
    seed: int,
    desc: str = "writing questions",
) -> tuple[list[Wordings], Counter[str], int]:
    """Each fact with its cloze and up to `samples` model rewordings that pass the filters.

    Facts whose clozes nearly repeat an earlier fact's (MiniLM cosine at least
    `DUPLICATE_FACT_SIMILARITY`; exact repeats without an embedder) are
    dropped first: the same question with two answers cannot be graded.

    Returns:
        The kept facts' wordings (in fact order), the count of rewordings each
        filter dropped (plus "duplicate_fact"), and how many requests failed.
    """
    clozes = [f.cloze for f in facts]
    if embedder is not None:
        repeated = set(near_duplicates(clozes, DUPLICATE_FACT_SIMILARITY, embedder))
    else:
        seen: set[str] = set()
        repeated = {i for i, c in enumerate(clozes) if _norm(c) in seen or seen.add(_norm(c))}
    facts = [f for i, f in enumerate(facts) if i not in repeated]
    dropped: Counter[str] = Counter({name: 0 for name in FILTERS})
    dropped["duplicate_fact"] = len(repeated)
    leads = [lead(f) for f in facts]
    prompts = [
        engine.render([{"role": "user", "content": rewrite_request(f)}]) + text
        for f, text in zip(facts, leads, strict=True)
    ]
    params = SamplingParams(n=samples, temperature=0.8, top_p=0.95, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
    outputs = engine.generate(prompts, params, desc=desc) if prompts else []
    candidates: list[list[str]] = []
    failed = 0
    for fact, text, completions in zip(facts, leads, outputs, strict=True):
        if request_error(completions):
            failed += 1
            candidates.append([])
            continue
        passed = []
        for completion in completions:
            question = _first_question(text, completion.text)
            reason = check_wording(fact, question)
            if reason:
                dropped[reason] += 1
            else:
                passed.append(question)
        candidates.append(passed)
    return _by_meaning(facts, candidates, embedder, dropped), dropped, failed


def _by_meaning(
    facts: Sequence[Fact], candidates: Sequence[list[str]], embedder: Embedder | None, dropped: Counter[str]
) -> list[Wordings]:
    """Keep the rewordings close enough to their cloze in meaning and different enough from each other."""
    out = []
    # Every cloze with its candidates in one encoding call (not one per fact): rows [cloze, *passed] per fact.
    texts = [t for fact, passed in zip(facts, candidates, strict=True) if passed for t in (fact.cloze, *passed)]
    encoded = embedder.encode(texts) if embedder is not None and texts else None  # (rows, d), unit rows
    row = 0
    for fact, passed in zip(facts, candidates, strict=True):
        kept: list[str] = []
        if passed and encoded is not None:
            vectors, row = encoded[row : row + 1 + len(passed)], row + 1 + len(passed)  # (1 + n, d)
            similarity = vectors[1:] @ vectors[0]  # (n,) cosine of each rewording to the cloze
            kept_vectors = [vectors[0]]
            for question, vector, to_cloze in zip(passed, vectors[1:], similarity, strict=True):
                if to_cloze < MIN_SIMILARITY:
                    dropped["drifted"] += 1
                elif float(np.max(np.stack(kept_vectors) @ vector)) >= REPEAT_SIMILARITY:
                    dropped["repeat"] += 1
                else:
                    kept.append(question)
                    kept_vectors.append(vector)
        else:
            for question in passed:
                if _norm(question) in {_norm(q) for q in [fact.cloze, *kept]}:
                    dropped["repeat"] += 1
                else:
                    kept.append(question)
        out.append(Wordings(fact, (fact.cloze, *kept)))
    return out
