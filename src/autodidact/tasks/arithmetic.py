"""Arithmetic: add, subtract and multiply small numbers, graded by the final number."""

from __future__ import annotations

import random
import re

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
        if train_size < 0 or heldout_size < 0:
            raise AutodidactError(f"arithmetic: sizes must be >= 0, got train {train_size}, heldout {heldout_size}.")
        wanted = train_size + heldout_size
        if wanted > self.capacity():
            raise AutodidactError(
                f"arithmetic: asked for {wanted} prompts but only {self.capacity()} distinct problems exist; "
                "lower train_size/heldout_size or raise max_operand."
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
            raise AutodidactError(
                f"arithmetic: drew only {len(pool)} of {wanted} distinct prompts; lower train_size/heldout_size."
            )
        # Held-out first: it then depends only on (seed, heldout_size), so runs with
        # different training pools are compared on the same held-out prompts.
        train = [self._prompt("train", i, *item) for i, item in enumerate(pool[heldout_size:])]
        heldout = [self._prompt("heldout", i, *item) for i, item in enumerate(pool[:heldout_size])]
        return train, heldout

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
