"""Judge prompt templates.

The response under judgment is fenced between markers; markers that appear
inside the response are neutralised so the text cannot close the fence and
write its own instructions after it.
"""

from __future__ import annotations

from collections.abc import Sequence

BEGIN, END = "<<<RESPONSE>>>", "<<<END RESPONSE>>>"

DIRECT = """You are a strict grader. Read the user's request and the assistant's response, then rate the response.

[User request]
{question}

[Assistant response]
{begin}
{response}
{end}

Rate the response from 0 (useless or wrong) to 10 (fully correct and follows every instruction in the request). Reply with the number only."""

RUBRIC = """You are a strict grader. Read the user's request and the assistant's response.

[User request]
{question}

[Assistant response]
{begin}
{response}
{end}

Check the response against each criterion, one short line each:
{criteria}
Then give the overall rating from 0 (worst) to 10 (best) on the last line as "Final score: N"."""

DIRECT_ANSWER_PREFIX = "Score: "
RUBRIC_ANSWER_PREFIX = "Final score: "


def fence(response: str) -> str:
    """Neutralise the fence markers inside an untrusted response."""
    return response.replace(BEGIN, "<<RESPONSE>>").replace(END, "<<END RESPONSE>>")


def direct_prompt(question: str, response: str) -> str:
    return DIRECT.format(question=question, response=fence(response), begin=BEGIN, end=END)


def rubric_prompt(question: str, response: str, criteria: Sequence[str]) -> str:
    listed = "\n".join(f"- {c}" for c in criteria)
    return RUBRIC.format(question=question, response=fence(response), begin=BEGIN, end=END, criteria=listed)
