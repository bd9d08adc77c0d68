"""Engine over an OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI), with the `openai` client.

Rendering. Judges build their prompts as `render(messages) + answer_prefix`
("Score: ", or a rubric's reasoning then "Final score: ") and read what comes
next. The engine keeps that exact in one of two ways, fixed at construction:

- With a tokenizer (`judge.server.tokenizer`): `render` applies its chat template
  here, and every request goes to `/completions` with the rendered text, so
  the server sees exactly what the in-process engine would.
- Without one: the server owns the chat template. `render` returns the
  messages themselves, encoded as `CHAT_MARK + json + CHAT_MARK`; requests go
  to `/chat/completions`, and text appended after the encoded messages is
  sent as a final assistant message for the server to continue
  (`continue_final_message`, as vLLM names it; llama.cpp server and Ollama
  continue a trailing assistant message on their own). OpenAI's hosted API
  does not continue an assistant message, so prefixed judge prompts need a
  tokenizer and a `/completions` server there.

Any other string (not made by `render` without a tokenizer) goes to
`/completions` as it is; with a tokenizer, `add_special_tokens: false` is sent
too, since the rendered template already carries its special tokens.

Log-probabilities. `continuation_logprobs` asks for one token with the top
`top_logprobs` alternatives (`logprobs` / `top_logprobs`). The prompt's
trailing whitespace is moved into the continuation ("Score:" then " 7"), as
servers tokenize a bare trailing space badly. A continuation's log-probability
is summed over the first-token alternatives it starts with, or that start
with it; a continuation split over tokens (" 1" + "0") is followed with one
more 1-token request per visible prefix token, at most `MAX_TOKENS_PER_CONTINUATION`
deep. A continuation not among the alternatives gets -inf.

Failures. Requests run `concurrency` at a time in a thread pool; the client
retries connection errors, timeouts, 408/409/429 and 5xx `max_retries` times
with exponential backoff, each attempt limited to `timeout` seconds. A reply
that does not parse (malformed JSON, a choice without text) is retried here
the same number of times, since the client treats it as final. A request
still failing then does not raise: its completions carry `error` and its
log-probability row is a `FailedRow` (see `autodidact.engines`), so the judge
records `Judgment(score=None, error=reason)`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from autodidact.engines.base import Completion, EngineError, FailedRow, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.progress import progress_bar
from autodidact.records import Message


def read_api_key(env_name: str | None, field: str) -> str | None:
    """The API key from the environment variable `env_name` (None when unset in the config); `field` names it."""
    if not env_name:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise AutodidactError(f"{field}: the environment variable {env_name} is not set. Export it before the run.")
    return key


CHAT_MARK = "\x00"  # never inside json.dumps output, which escapes control characters
MAX_TOKENS_PER_CONTINUATION = 3
MALFORMED_RETRY_DELAY = 0.5  # seconds before the first retry of a malformed reply, doubled each time
T = TypeVar("T")


class _Malformed(Exception):
    """A reply that did not parse, after the retries."""


@dataclass(frozen=True)
class _Choice:
    text: str
    num_tokens: int
    top: dict[str, float] | None  # first generated token's alternatives -> log-probability


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi = max(a, b)
    return hi + math.log(math.exp(a - hi) + math.exp(b - hi))


def _split_chat(prompt: str) -> tuple[list[Message] | None, str]:
    """(messages, assistant prefix) for a chat-encoded prompt; (None, prompt) for plain text."""
    if prompt.startswith(CHAT_MARK):
        end = prompt.find(CHAT_MARK, 1)
        if end > 0:
            return json.loads(prompt[1:end]), prompt[end + 1 :]
    return None, prompt


def _completion_choices(response: Any) -> tuple[list[str], list[dict[str, float] | None]]:
    """Texts and first-token alternatives of a `/completions` reply."""
    choices = [(c.text, c.logprobs and c.logprobs.top_logprobs) for c in response.choices]
    return [t for t, _ in choices], [dict(lp[0]) if lp and lp[0] else None for _, lp in choices]


def _chat_choices(response: Any) -> tuple[list[str], list[dict[str, float] | None]]:
    """Texts and first-token alternatives of a `/chat/completions` reply."""
    texts = [c.message.content or "" for c in response.choices]
    tops = [
        {t.token: t.logprob for t in c.logprobs.content[0].top_logprobs} if c.logprobs and c.logprobs.content else None
        for c in response.choices
    ]
    return texts, tops


class OpenAIEngine:
    """The Engine protocol over an OpenAI-compatible HTTP server.

    Args:
        base_url: the server's API root, e.g. "http://localhost:8000/v1".
        model: the model name the server serves.
        api_key: sent as the bearer token (None: a placeholder, for servers without keys).
        tokenizer: a tokenizer with a chat template: render locally and use `/completions`.
            None: the server renders (`/chat/completions`).
        concurrency: requests in flight at once.
        timeout: seconds per request attempt.
        max_retries: retries after retryable errors, with exponential backoff.
        top_logprobs: alternatives asked for when scoring continuations.
        http_client: an `httpx` client for the `openai` client (tests pass a mock transport).
        role: what the server is, in failure messages ("judge", "policy").
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        tokenizer: Any = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 2,
        top_logprobs: int = 20,
        http_client: Any = None,
        role: str = "judge",
    ):
        self.base_url = base_url
        self.role = role
        self.model = model
        self.tokenizer = tokenizer
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.top_logprobs = top_logprobs
        self.supports_logprobs = True  # until `probe` finds otherwise
        self._secret = api_key
        # A placeholder key, not None: None would make the client read OPENAI_API_KEY behind the config's back.
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    # --- rendering ---------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return CHAT_MARK + json.dumps(list(messages)) + CHAT_MARK

    # --- one request -------------------------------------------------------------

    def _reason(self, exc: Exception) -> str:
        if isinstance(exc, openai.APITimeoutError):
            text = f"request timed out after {self.timeout:g}s ({self.max_retries} retries)"
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            text = f"cannot reach the {self.role} server at {self.base_url} ({self.max_retries} retries): {cause}"
        elif isinstance(exc, openai.APIStatusError):
            text = f"the {self.role} server answered HTTP {exc.status_code}: {exc.message}"
        elif isinstance(exc, _Malformed):
            text = f"the {self.role} server sent a malformed reply {self.max_retries + 1} times: {exc}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        text = " ".join(text.split())
        if self._secret:  # before cutting: a key split by the cut would survive the replacement
            text = text.replace(self._secret, "***")
        return text[:300]

    def _request(
        self,
        prompt: str,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        n: int = 1,
        seed: int | None = None,
        logprobs: bool = False,
    ) -> list[_Choice]:
        """One request, normalised over both endpoints.

        Raises:
            EngineError: the server could not be reached, answered an error, or
                returned no log-probabilities when they were asked for.
        """
        messages, text = _split_chat(prompt)
        args: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "temperature": temperature, "n": n}
        if temperature > 0:
            args["top_p"] = top_p
        if seed is not None:
            args["seed"] = seed
        try:
            texts, tops, response = self._parsed(messages, text, logprobs, args)
        except (openai.OpenAIError, _Malformed) as exc:
            raise EngineError(self._reason(exc)) from exc
        if not texts:
            raise EngineError(f"the {self.role} server returned no choices")
        if logprobs and any(top is None for top in tops):
            raise EngineError(f"the {self.role} server returned no log-probabilities; set judge.mode=generate")
        n = len(texts)
        return [_Choice(t, self._count_tokens(t, response, n), top) for t, top in zip(texts, tops, strict=True)]

    def _parsed(
        self, messages: list[Message] | None, text: str, logprobs: bool, args: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, float] | None], Any]:
        """(texts, first-token alternatives, response); a reply that does not parse is asked for again."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._create(messages, text, logprobs, dict(args))
            except (ValueError, TypeError, AttributeError, KeyError) as exc:  # JSONDecodeError is a ValueError
                if attempt == self.max_retries:
                    raise _Malformed(f"{type(exc).__name__}: {exc}") from exc
                time.sleep(MALFORMED_RETRY_DELAY * 2**attempt)
        raise AssertionError("unreachable")

    def _create(
        self, messages: list[Message] | None, text: str, logprobs: bool, args: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, float] | None], Any]:
        """The texts and first-token alternatives of one reply; TypeError etc. where it does not parse."""
        if messages is None:
            if logprobs:
                args["logprobs"] = self.top_logprobs
            if self.tokenizer is not None:  # the rendered template already holds BOS etc. (vLLM's flag)
                args["extra_body"] = {"add_special_tokens": False}
            response = self.client.completions.create(prompt=text, **args)
            texts, tops = _completion_choices(response)
        else:
            if text:  # an answer prefix: the server continues it
                messages = [*messages, {"role": "assistant", "content": text}]
                args["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
            if logprobs:
                args.update(logprobs=True, top_logprobs=self.top_logprobs)
            response = self.client.chat.completions.create(messages=messages, **args)
            texts, tops = _chat_choices(response)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("a choice without text")
        return texts, tops, response

    def _count_tokens(self, text: str, response: Any, n: int) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False).input_ids)
        usage = getattr(response, "usage", None)
        return round(usage.completion_tokens / n) if usage and usage.completion_tokens is not None else 0

    def _each(
        self, prompts: Sequence[str], run: Callable[[str], T], fail: Callable[[str], T], desc: str, unit: str
    ) -> list[T]:
        """`run(prompt)` for every prompt, `concurrency` at a time, in prompt order.

        A prompt whose request fails gets `fail(reason)` instead, so one bad
        request never takes the batch down.
        """
        results: list[Any] = [None] * len(prompts)
        with progress_bar(desc, total=len(prompts), unit=unit) as advance, ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(run, p): i for i, p in enumerate(prompts)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except EngineError as exc:
                    results[i] = fail(str(exc))
                except Exception as exc:  # a malformed response: this request fails, the run goes on
                    results[i] = fail(self._reason(exc))
                advance(1)
        return results

    # --- the Engine protocol -----------------------------------------------------

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating"
    ) -> list[list[Completion]]:
        def run(prompt: str) -> list[Completion]:
            completions: list[Completion] = []
            # Some servers ignore n > 1; ask again (next seed) for the rest.
            for attempt in range(params.n):
                seed = params.seed + attempt if params.temperature > 0 else None
                choices = self._request(
                    prompt, params.max_new_tokens, params.temperature, params.top_p, params.n - len(completions), seed
                )
                completions += [Completion(c.text.strip(), c.num_tokens) for c in choices]
                if len(completions) >= params.n:
                    break
            return completions[: params.n]

        def fail(reason: str) -> list[Completion]:
            return [Completion("", 0, error=reason)] * params.n

        return self._each(prompts, run, fail, desc, unit="prompts")

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        """log P(continuation | prompt) from the first generated tokens' alternatives, shape (P, C)."""

        def run(prompt: str) -> list[float]:
            head = prompt.rstrip()
            gap = prompt[len(head) :]
            tops: dict[str, dict[str, float]] = {}  # text so far -> its next token's alternatives
            return [self._logprob(head, gap + c, MAX_TOKENS_PER_CONTINUATION, tops) for c in continuations]

        return self._each(prompts, run, lambda reason: FailedRow(len(continuations), reason), desc, unit="prompts")

    def _logprob(self, head: str, target: str, depth: int, tops: dict[str, dict[str, float]]) -> float:
        """log P(the text after `head` starts with `target`), over the tokenizations the alternatives show."""
        if head not in tops:
            (choice,) = self._request(head, max_tokens=1, logprobs=True)[:1]
            tops[head] = choice.top or {}
        total = -math.inf
        for token, lp in tops[head].items():
            if token.startswith(target):  # this token covers the whole continuation
                total = _logaddexp(total, lp)
            elif token and target.startswith(token) and depth > 1:  # the continuation goes on in the next token
                total = _logaddexp(total, lp + self._logprob(head + token, target[len(token) :], depth - 1, tops))
        return total

    # --- start-up check ------------------------------------------------------------

    def probe(self) -> None:
        """One 1-token request: sets `supports_logprobs`.

        Raises:
            EngineError: the server cannot be used at all (unreachable, bad model name, bad key).
        """
        prompt = self.render([{"role": "user", "content": "Reply with OK."}])
        try:
            self._request(prompt, max_tokens=1, logprobs=True)
            self.supports_logprobs = True
            return
        except EngineError as exc:
            if isinstance(exc.__cause__, openai.APIConnectionError):
                raise
        self._request(prompt, max_tokens=1)  # answers without log-probabilities?
        self.supports_logprobs = False


__all__ = ["CHAT_MARK", "OpenAIEngine"]
