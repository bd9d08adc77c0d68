"""Instruction following: an everyday request plus one constraint a program can check."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from typing import Any

from autodidact.errors import AutodidactError
from autodidact.records import Prompt, Split

# (subject, noun): the noun is a word a natural answer would likely use, which
# is what makes "do not use the word X" a real constraint rather than a freebie.
TOPICS: tuple[tuple[str, str], ...] = (
    ("the ocean", "ocean"), ("baking bread", "bread"), ("the moon", "moon"),
    ("a rainy day", "rain"), ("making coffee", "coffee"), ("riding a bicycle", "bicycle"),
    ("a city park", "park"), ("autumn", "autumn"), ("a thunderstorm", "thunder"),
    ("growing tomatoes", "tomatoes"), ("a public library", "books"), ("the night sky", "stars"),
    ("a farmers market", "market"), ("camping in the woods", "tent"), ("a snowy morning", "snow"),
    ("a busy kitchen", "kitchen"), ("learning to cook", "food"), ("a train journey", "train"),
    ("a birthday party", "cake"), ("the desert", "sand"), ("a mountain hike", "mountain"),
    ("a house cat", "cat"), ("a pet dog", "dog"), ("a vegetable garden", "garden"),
    ("a summer beach", "beach"), ("a morning routine", "morning"), ("a rainforest", "trees"),
    ("honeybees", "honey"), ("the wind", "wind"), ("a lighthouse", "light"),
    ("a river", "water"), ("a school classroom", "students"), ("a bus ride", "bus"),
    ("a cup of tea", "tea"), ("a sunrise", "sun"), ("a music concert", "music"),
    ("a soccer game", "ball"), ("a volcano", "lava"), ("an old castle", "castle"),
    ("a fishing trip", "fish"), ("a winter coat", "warm"), ("a bakery", "pastries"),
)

REQUESTS: tuple[str, ...] = (
    "Describe {subject}.",
    "Tell me about {subject}.",
    "Write a few sentences about {subject}.",
    "Explain what makes {subject} interesting.",
)

KINDS: tuple[str, ...] = (
    "lowercase", "max_words", "min_words", "include_word",
    "avoid_word", "json_key", "bullets", "ends_with",
)
INCLUDE_WORDS = ("blue", "gentle", "bright", "quiet", "golden", "simple", "remarkable", "journey", "careful", "together")
JSON_KEYS = ("summary", "description", "answer", "title", "details", "facts")
ENDINGS = (
    "Is there anything else I can help with?",
    "Let me know if you have more questions.",
    "That is all for now.",
    "Thanks for reading!",
)

# The constraint as the user reads it; formatted with the reference dict.
# The ends_with sentence has no full stop of its own, so the phrase is unambiguous.
_STATEMENTS = {
    "lowercase": "Write your entire answer in lowercase letters, with no capital letters at all.",
    "max_words": "Answer in at most {n} words.",
    "min_words": "Answer in at least {n} words.",
    "include_word": 'Include the word "{word}" in your answer.',
    "avoid_word": 'Do not use the word "{word}" anywhere in your answer.',
    "json_key": 'Format your entire answer as a JSON object with the key "{key}".',
    "bullets": 'Answer with exactly {n} bullet points, each on its own line starting with "- ".',
    "ends_with": 'End your answer with the exact phrase "{phrase}"',
}

# The paraphrased held-out set only (`build_paraphrased`): the same requests and constraints in
# words no training prompt uses. PARAPHRASED_REQUESTS[i] rewords REQUESTS[i]; every statement
# asks for exactly what the `_STATEMENTS` entry of its kind asks, so `check` grades both alike.
PARAPHRASED_REQUESTS: tuple[str, ...] = (
    "Paint a picture of {subject} in words.",
    "I'd like to hear about {subject}.",
    "Put down some thoughts on {subject}.",
    "Why might someone find {subject} fascinating?",
)
_PARAPHRASED_STATEMENTS = {
    "lowercase": "Keep every letter of your reply in lower case, not a single capital.",
    "max_words": "Keep your reply to {n} words or fewer.",
    "min_words": "Use no fewer than {n} words in your reply.",
    "include_word": 'Make sure the word "{word}" appears somewhere in your reply.',
    "avoid_word": 'Never write the word "{word}" in your reply.',
    "json_key": 'Reply with nothing but a JSON object, and give it a "{key}" field.',
    "bullets": 'Reply as a list of exactly {n} items, one per line, each line beginning with "- ".',
    "ends_with": 'Let the very last words of your reply be "{phrase}"',
}

# A whole response that is one fenced block, optionally tagged json.
_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL | re.IGNORECASE)

# Rejection sampling stops after this many draws per requested prompt; far more
# than needed even when the request is the whole space (coupon collector).
_DRAWS_PER_PROMPT = 200


def constraint_options(kind: str, noun: str) -> list[dict[str, Any]]:
    """Every constraint of `kind` for a topic whose key noun is `noun`."""
    if kind == "lowercase":
        return [{"kind": kind}]
    if kind == "max_words":
        return [{"kind": kind, "n": n} for n in (10, 15, 20, 30)]
    if kind == "min_words":
        return [{"kind": kind, "n": n} for n in (20, 30, 40)]
    if kind == "include_word":
        return [{"kind": kind, "word": w} for w in INCLUDE_WORDS]
    if kind == "avoid_word":
        return [{"kind": kind, "word": noun}]
    if kind == "json_key":
        return [{"kind": kind, "key": k} for k in JSON_KEYS]
    if kind == "bullets":
        return [{"kind": kind, "n": n} for n in (2, 3, 4)]
    if kind == "ends_with":
        return [{"kind": kind, "phrase": p} for p in ENDINGS]
    raise ValueError(f"unknown constraint kind {kind!r}")


def describe(constraint: dict[str, Any], paraphrased: bool = False) -> str:
    """The constraint in plain English, as it appears in the user message.

    `paraphrased`: in the held-out-only wording of the paraphrased held-out set.
    """
    return (_PARAPHRASED_STATEMENTS if paraphrased else _STATEMENTS)[constraint["kind"]].format(**constraint)


def _has_word(text: str, word: str) -> bool:
    """Case-insensitive whole-word match, so "sun" is not found in "sunrise"."""
    return re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


def _json_object(text: str) -> dict[str, Any] | None:
    """The response parsed as a JSON object (bare or in one ``` fence), or None."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _bullet_count(text: str) -> int:
    """Lines that start with "- " or "* " after optional indentation."""
    return sum(1 for line in text.splitlines() if line.lstrip().startswith(("- ", "* ")))


def check(constraint: dict[str, Any], response: str) -> bool | None:
    """Whether `response` meets `constraint`; None for a kind this module does not know.

    An empty or blank response meets no constraint: it did not answer, so it
    must not pass "at most N words" or "avoid the word W" for free.
    """
    kind = constraint.get("kind")
    if kind not in KINDS:
        return None
    if not response.strip():
        return False
    words = response.split()
    if kind == "lowercase":
        # Requiring a letter keeps a bare number or emoji from counting as lowercase prose.
        return response == response.lower() and any(c.isalpha() for c in response)
    if kind == "max_words":
        return len(words) <= constraint["n"]
    if kind == "min_words":
        return len(words) >= constraint["n"]
    if kind == "include_word":
        return _has_word(response, constraint["word"])
    if kind == "avoid_word":
        return not _has_word(response, constraint["word"])
    if kind == "json_key":
        obj = _json_object(response)
        return obj is not None and constraint["key"] in obj
    if kind == "bullets":
        return _bullet_count(response) == constraint["n"]
    return response.rstrip().endswith(constraint["phrase"])  # ends_with


class InstructionsTask:
    """Everyday requests, each with one checkable constraint as the reference."""

    name = "instructions"

    def capacity(self) -> int:
        """How many distinct user messages this task can produce."""
        per_topic = [sum(len(constraint_options(k, noun)) for k in KINDS) for _, noun in TOPICS]
        return len(REQUESTS) * sum(per_topic)

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Draw distinct prompts for `seed` and split them into train and held-out.

        One pool is de-duplicated by the user-message text, so no text appears
        in both splits.
        """
        pool = self._pool([train_size, heldout_size], seed, "train_size/heldout_size")
        # Held-out first: it then depends only on (seed, heldout_size), so runs with
        # different training pools are compared on the same held-out prompts.
        train = [self._prompt("train", i, text, c) for i, (text, c, _, _) in enumerate(pool[heldout_size:])]
        heldout = [self._prompt("heldout", i, text, c) for i, (text, c, _, _) in enumerate(pool[:heldout_size])]
        return train, heldout

    def build_paraphrased(self, train_size: int, heldout_size: int, size: int, seed: int) -> list[Prompt]:
        """`size` held-out prompts in wordings no training prompt uses (split "heldout_paraphrase").

        The items continue the pool `build(train_size, heldout_size, seed)`
        draws (request, subject, constraint), so each is a problem neither of
        its splits asks, exactly as a held-out prompt is; it is then worded
        with `PARAPHRASED_REQUESTS` and the paraphrased constraint statements.
        `meta["training_wording"]` keeps the text the training wording would
        have given: a text neither split of `build` holds.
        """
        pool = self._pool([train_size, heldout_size, size], seed, "train_size/heldout_size/paraphrase_heldout_size")
        prompts = []
        for i, (text, constraint, subject, k) in enumerate(pool[train_size + heldout_size:]):
            reworded = f"{PARAPHRASED_REQUESTS[k].format(subject=subject)} {describe(constraint, paraphrased=True)}"
            prompt = self._prompt("heldout_paraphrase", i, reworded, constraint)
            prompts.append(replace(prompt, meta=prompt.meta | {"training_wording": text}))
        return prompts

    def _pool(self, sizes: list[int], seed: int, fields: str) -> list[tuple[str, dict[str, Any], str, int]]:
        """sum(sizes) distinct (text, constraint, subject, request index) items, in draw order.

        A larger request extends a smaller one: the first items are the same, so
        the paraphrased set drawn after train and held-out leaves both unchanged.
        """
        if any(n < 0 for n in sizes):
            raise AutodidactError(f"instructions: sizes must be >= 0, got {fields} {'/'.join(map(str, sizes))}.")
        wanted = sum(sizes)
        if wanted > self.capacity():
            raise AutodidactError(
                f"instructions: asked for {wanted} prompts but only {self.capacity()} distinct prompts exist; "
                f"lower {fields}."
            )
        rng = random.Random(seed)
        seen: set[str] = set()
        pool: list[tuple[str, dict[str, Any], str, int]] = []
        for _ in range(_DRAWS_PER_PROMPT * wanted):
            if len(pool) == wanted:
                break
            subject, noun = rng.choice(TOPICS)
            request = rng.choice(REQUESTS)
            # Kind first, then its parameters, so each kind is equally likely
            # however many parameter values it has.
            constraint = rng.choice(constraint_options(rng.choice(KINDS), noun))
            text = f"{request.format(subject=subject)} {describe(constraint)}"
            if text in seen:
                continue
            seen.add(text)
            pool.append((text, constraint, subject, REQUESTS.index(request)))
        if len(pool) < wanted:
            raise AutodidactError(f"instructions: drew only {len(pool)} of {wanted} distinct prompts; lower {fields}.")
        return pool

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """1.0 if `response` meets the prompt's constraint, else 0.0.

        None when the prompt has no reference or names a constraint kind this
        task does not know, since then there is nothing to check.
        """
        if not isinstance(prompt.reference, dict):
            return None
        verdict = check(prompt.reference, response)
        return None if verdict is None else float(verdict)

    def _prompt(self, split: Split, index: int, text: str, constraint: dict[str, Any]) -> Prompt:
        return Prompt(
            id=f"{self.name}-{split}-{index:04d}",
            task=self.name,
            split=split,
            messages=[{"role": "user", "content": text}],
            reference=dict(constraint),
            meta=dict(constraint),
        )
