"""Grading a document answer: by span match (`grading: span`, no model) or by the model's yes/no (`grading: model`).

Answer-first questions grade by span match: their reference is a span of the user's document. The model's
yes/no is the grading of the original workflow, whose references the model wrote.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence

from autodidact.engines import Engine, EngineError, request_error
from autodidact.quoting import BEGIN, END, fence
from autodidact.records import Prompt
from autodidact.tasks.documents.facts import states_span
from autodidact.tasks.documents.search import final_answer

log = logging.getLogger(__name__)

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


# Made-up markup a small model wraps answers in (<output>, <response>, <answer>, ...): measured on the Apollo 13
# example, it was in most verified answers after one iteration, and trained closed-book it taught the model to
# answer every recall question with "<output>" and empty search calls.
_TAG = re.compile(r"</?[A-Za-z_][\w-]*>")


def plain_span(answer: str, span: str) -> bool:
    """Span grading: the answer states the span (`facts.states_span`) as plain text, with no markup tag in it."""
    return not _TAG.search(answer) and states_span(answer, span)


def span_verdict(prompt: Prompt, response: str) -> float | None:
    """`grading: span` on one response: 1.0 or 0.0 by `plain_span` on its final answer; None without a reference."""
    if prompt.reference is None:
        return None
    return float(plain_span(final_answer(response), str(prompt.reference)))


def normalise(text: str) -> str:
    """Lowercase words and numbers only, for the exact-match shortcut."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def verify_request(prompt: Prompt, response: str) -> str:
    """The yes/no question put to the grading model about one answer."""
    question = prompt.meta.get("question", prompt.text)
    proposed = fence(final_answer(response))
    return VERIFY_PROMPT.format(question=question, reference=prompt.reference, proposed=proposed, begin=BEGIN, end=END)


def model_verdicts(
    engine: Engine, prompts: Sequence[Prompt], responses: Sequence[str], task: str
) -> list[float | None]:
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
    texts = [
        engine.render([{"role": "user", "content": verify_request(prompts[i], responses[i])}]) + VERIFY_PREFIX
        for i in ask
    ]
    try:
        table = engine.continuation_logprobs(texts, list(VERIFY_CHOICES), desc=f"{task}: verifying")
    except (EngineError, ValueError) as exc:  # ValueError: the tokenizer cannot split the choices after the prompt
        log.warning("documents '%s': the verifier failed: %s", task, exc)
        return verdicts
    for i, row in zip(ask, table, strict=True):
        yes, no = (math.exp(x) for x in row)
        if request_error(row) is None and yes + no >= MIN_VERDICT_MASS:
            verdicts[i] = 1.0 if yes / (yes + no) >= 0.5 else 0.0
    return verdicts
