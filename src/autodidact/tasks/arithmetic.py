"""Arithmetic: add, subtract and multiply small numbers, graded by the final number."""

from __future__ import annotations

import random
import re
from dataclasses import replace

from autodidact.errors import AutodidactError
from autodidact.records import Prompt, Split

# Symbol templates and a worded one, so the model does not learn a single phrasing.
_TEMPLATES = (
    "What is {a} {sym} {b}? Answer with just the number.",
    "Compute {a} {sym} {b}. Reply with only the result.",
    "Calculate {a} {sym} {b} and give just the number.",
    "What is {a} {word} {b}? Answer with just the number.",
)
_WORDS = {"+": "plus", "-": "minus", "*": "times"}

# The paraphrased held-out set only (`build_paraphrased`): wordings no training prompt uses. None
# shares a frame with _TEMPLATES: no "What is", no operator symbol or word ("plus", "minus",
# "times"), no "just the number" / "only the result". Four per op, so the template a pool draw
# picked maps to one of them by its index.
_PARAPHRASES = {
    "+": (
        "Add {a} and {b}. What do you get? Reply with the number only.",
        "Find the sum of {a} and {b}. Reply with the number only.",
        "Start with {a} and add {b} to it. Which number results? Give the number and nothing else.",
        "Put {a} and {b} together. How much is that in total? Reply with the number only.",
    ),
    "-": (
        "Subtract {b} from {a}. What do you get? Reply with the number only.",
        "Start with {a} and take away {b}. Which number is left? Reply with the number only.",
        "Take {b} away from {a}. How much remains? Give the number and nothing else.",
        "Start from {a} and count down by {b}. Where do you end up? Reply with the number only.",
    ),
    "*": (
        "Multiply {a} by {b}. What do you get? Reply with the number only.",
        "Find the product of {a} and {b}. Reply with the number only.",
        "How much is {b} groups of {a}? Give the number and nothing else.",
        "If each of {a} boxes holds {b} items, how many items are there altogether? Reply with the number only.",
    ),
}

# A number token: grouped thousands ("1,234") or plain digits, with an optional
# sign and decimal tail. The sign counts only when no digit precedes it, so the
# "-" in "10-12" is read as a dash, not as the number -12. The decimal tail is
# part of the token so that "68.5" is read as 68.5 rather than as 5.
_NUMBER = re.compile(r"(?<!\d)(-?)(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(\d+))?")

# Rejection sampling stops after this many draws per requested prompt; far more
# than needed even when the request is the whole space (coupon collector).
_DRAWS_PER_PROMPT = 200


def last_integer(text: str) -> int | None:
    """The last number in `text` as an int, or None if there is none or it is not whole.

    Thousands commas are ignored ("1,234" is 1234) and a leading minus is kept.
    A trailing ".0" still counts as whole; "68.5" is not an integer answer.
    """
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    sign, digits, fraction = matches[-1].groups()
    if fraction and fraction.strip("0"):
        return None
    value = int(digits.replace(",", ""))
    return -value if sign else value


class ArithmeticTask:
    """Two-operand arithmetic prompts whose reference is the integer answer.

    Addition and subtraction use operands 0..max_operand; multiplication uses
    operands 2..max_factor. Subtraction may give a negative answer.
    """

    name = "arithmetic"

    def __init__(self, max_operand: int = 99, max_factor: int = 12) -> None:
        if max_operand < 0:
            raise AutodidactError(f"arithmetic: max_operand must be >= 0, got {max_operand}.")
        if max_factor < 2:
            raise AutodidactError(f"arithmetic: max_factor must be >= 2, got {max_factor}.")
        self.max_operand = max_operand
        self.max_factor = max_factor

    def capacity(self) -> int:
        """How many distinct (op, a, b) problems this task can produce."""
        return 2 * (self.max_operand + 1) ** 2 + (self.max_factor - 1) ** 2

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Draw distinct problems for `seed` and split them into train and held-out.

        One pool is de-duplicated by (op, a, b), which also de-duplicates the
        text, so the two splits share neither a problem nor a prompt text.
        """
        pool = self._pool([train_size, heldout_size], seed, "train_size/heldout_size")
        # Held-out first: it then depends only on (seed, heldout_size), so runs with
        # different training pools are compared on the same held-out prompts.
        train = [self._prompt("train", i, *item) for i, item in enumerate(pool[heldout_size:])]
        heldout = [self._prompt("heldout", i, *item) for i, item in enumerate(pool[:heldout_size])]
        return train, heldout

    def build_paraphrased(self, train_size: int, heldout_size: int, size: int, seed: int) -> list[Prompt]:
        """`size` held-out prompts in wordings no training prompt uses (split "heldout_paraphrase").

        The problems continue the pool `build(train_size, heldout_size, seed)`
        draws, so they share no (op, a, b) with its train or held-out prompts,
        and are then reworded with the held-out-only phrasings (`_PARAPHRASES`).
        `meta["training_wording"]` keeps the problem as the training templates
        would have asked it: a text neither split of `build` holds.
        """
        pool = self._pool([train_size, heldout_size, size], seed, "train_size/heldout_size/paraphrase_heldout_size")
        prompts = []
        for i, (op, a, b, text) in enumerate(pool[train_size + heldout_size:]):
            k = next(j for j, t in enumerate(_TEMPLATES) if text == t.format(a=a, b=b, sym=op, word=_WORDS[op]))
            prompt = self._prompt("heldout_paraphrase", i, op, a, b, _PARAPHRASES[op][k].format(a=a, b=b))
            prompts.append(replace(prompt, meta=prompt.meta | {"training_wording": text}))
        return prompts

    def _pool(self, sizes: list[int], seed: int, fields: str) -> list[tuple[str, int, int, str]]:
        """sum(sizes) distinct problems (op, a, b, text in a training template), in draw order.

        A larger request extends a smaller one: the first items are the same, so
        the paraphrased set drawn after train and held-out leaves both unchanged.
        """
        if any(n < 0 for n in sizes):
            raise AutodidactError(f"arithmetic: sizes must be >= 0, got {fields} {'/'.join(map(str, sizes))}.")
        wanted = sum(sizes)
        if wanted > self.capacity():
            raise AutodidactError(
                f"arithmetic: asked for {wanted} prompts but only {self.capacity()} distinct problems exist; "
                f"lower {fields} or raise max_operand."
            )
        rng = random.Random(seed)
        seen: set[tuple[str, int, int]] = set()
        pool: list[tuple[str, int, int, str]] = []
        for _ in range(_DRAWS_PER_PROMPT * wanted):
            if len(pool) == wanted:
                break
            op, a, b = self._draw(rng)
            template = rng.choice(_TEMPLATES)  # drawn before the check so the stream never depends on `seen`
            if (op, a, b) in seen:
                continue
            seen.add((op, a, b))
            pool.append((op, a, b, template.format(a=a, b=b, sym=op, word=_WORDS[op])))
        if len(pool) < wanted:
            raise AutodidactError(f"arithmetic: drew only {len(pool)} of {wanted} distinct prompts; lower {fields}.")
        return pool

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """1.0 if the last integer in `response` equals the reference, else 0.0.

        A response with no integer did not answer and gets 0.0; None only when
        the prompt carries no reference to compare with.
        """
        if prompt.reference is None:
            return None
        return 1.0 if last_integer(response) == int(prompt.reference) else 0.0

    def _draw(self, rng: random.Random) -> tuple[str, int, int]:
        """One problem: the op first, so each op is equally likely whatever its range."""
        op = rng.choice("+-*")
        if op == "*":
            return op, rng.randint(2, self.max_factor), rng.randint(2, self.max_factor)
        return op, rng.randint(0, self.max_operand), rng.randint(0, self.max_operand)

    def _prompt(self, split: Split, index: int, op: str, a: int, b: int, text: str) -> Prompt:
        answer = a + b if op == "+" else a - b if op == "-" else a * b
        return Prompt(
            id=f"{self.name}-{split}-{index:04d}",
            task=self.name,
            split=split,
            messages=[{"role": "user", "content": text}],
            reference=answer,
            meta={"op": op, "a": a, "b": b},
        )
