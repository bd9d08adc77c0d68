"""Judge prompt templates.

The response under judgment is fenced between markers; markers that appear
inside the response are neutralised so the text cannot close the fence and
write its own instructions after it (see `fence` for what counts as a marker).
"""

from __future__ import annotations

from collections.abc import Sequence

from autodidact.quoting import BEGIN, END, fence  # re-exported: the judges quote through these

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

PAIRWISE = """You are a strict grader. Read the user's request and two assistant responses, A and B, then decide which response is better.

[User request]
{question}

[Response A]
{begin}
{a}
{end}

[Response B]
{begin}
{b}
{end}

Which response is more correct and follows every instruction in the request better? Reply with the letter A or B only."""

CONTRASTIVE = """You are a strict grader. Read the user's request and two assistant responses, A and B.

[User request]
{question}

[Response A]
{begin}
{a}
{end}

[Response B]
{begin}
{b}
{end}

In two or three sentences, explain what makes one response better than the other (correctness, following the instructions). Then give your verdict on the last line as "Better response: A" or "Better response: B"."""

REVISE = """A reviewer compared the assistant response below with another response to the same request and explained what is wrong with it{label_note}. Rewrite the response so that it answers the request correctly.

[User request]
{question}

[Response to improve]
{begin}
{response}
{end}

[Reviewer's explanation]
{begin}
{explanation}
{end}

Reply with the improved response only."""

EXAMPLE = """[Example request]
{question}

[Example response]
{begin}
{response}
{end}
Score: {score}"""

# The reverse-likelihood judge's user turn; the instruction is teacher-forced as the reply. Without a
# response the turn is the same minus the response, so the log-probabilities differ by what it adds.
BACKTRANSLATE = "Here is a response:\n\n{begin}\n{response}\n{end}\n\nWrite the request it answers."
BACKTRANSLATE_ALONE = "Write the request it answers."

DIRECT_ANSWER_PREFIX = "Score: "
RUBRIC_ANSWER_PREFIX = "Final score: "
PAIRWISE_ANSWER_PREFIX = "Better response: "


def direct_prompt(question: str, response: str) -> str:
    return DIRECT.format(question=question, response=fence(response), begin=BEGIN, end=END)


def rubric_prompt(question: str, response: str, criteria: Sequence[str]) -> str:
    listed = "\n".join(f"- {c}" for c in criteria)
    return RUBRIC.format(question=question, response=fence(response), begin=BEGIN, end=END, criteria=listed)


def persona_prompt(persona: str, question: str, response: str) -> str:
    """The direct prompt, preceded by a persona from the config (trusted text)."""
    return f"{persona.strip()}\n\n{direct_prompt(question, response)}"


def examples_prompt(question: str, response: str, examples: Sequence[tuple[str, str, int]]) -> str:
    """The direct prompt with graded examples, (question, response, score) each, after its first paragraph."""
    head, rest = direct_prompt(question, response).split("\n\n", 1)
    if not examples:
        return f"{head}\n\n{rest}"
    shown = "\n\n".join(
        EXAMPLE.format(question=q, response=fence(r), score=s, begin=BEGIN, end=END) for q, r, s in examples
    )
    intro = "Graded examples of responses to other requests:"
    return f"{head}\n\n{intro}\n\n{shown}\n\nNow the response to rate.\n\n{rest}"


def backtranslation_prompt(response: str | None) -> str:
    """The user turn after which the reverse-likelihood judge scores the instruction; None: without a response."""
    if response is None:
        return BACKTRANSLATE_ALONE
    return BACKTRANSLATE.format(response=fence(response), begin=BEGIN, end=END)


def pairwise_prompt(question: str, a: str, b: str) -> str:
    return PAIRWISE.format(question=question, a=fence(a), b=fence(b), begin=BEGIN, end=END)


def contrastive_prompt(question: str, a: str, b: str) -> str:
    return CONTRASTIVE.format(question=question, a=fence(a), b=fence(b), begin=BEGIN, end=END)


def revise_prompt(question: str, response: str, explanation: str, label: str = "") -> str:
    """`label`: what the explanation calls the response to improve ("A" or "B"), if known."""
    label_note = f" (the explanation calls it Response {label})" if label else ""
    return REVISE.format(
        question=question,
        response=fence(response),
        explanation=fence(explanation),
        label_note=label_note,
        begin=BEGIN,
        end=END,
    )
