"""Secrets: the judge server's API key comes from the environment and is never written anywhere.

A key is planted in an environment variable and a whole tiny run judges with
an OpenAI-compatible server (a mock transport in the real `openai` client)
that sees it in its Authorization header. One of the server's answers is an
error that echoes the header back, as a careless server might. Then every
byte the run left (config.yaml, run.sqlite and its -wal, the TensorBoard
tracking files, the HTML report), every log record at DEBUG from every
logger, and everything printed are searched for the key.
"""

from __future__ import annotations

import json
import logging
import math

import openai
import pytest

import autodidact.loop
import autodidact.loop.context as loop_module
from autodidact.apps.report import write_report
from autodidact.config import to_yaml, validate_config
from autodidact.engines import SamplingParams
from autodidact.engines.openai_engine import OpenAIEngine
from autodidact.judges.external import judge_engine
from autodidact.store import RunStore

try:  # the HTTP library the installed openai client is built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai releases
    import httpx

KEY = "sk-PLANTED-0123456789abcdef"
ENV = "AUTODIDACT_TEST_PLANTED_KEY"
URL = "http://judge.test/v1"
# Any 8 characters of the key count as a leak: a truncated or partly masked key is still a leak.
FRAGMENTS = [KEY[i : i + 8] for i in range(len(KEY) - 7)]


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


def leaks_in_bytes(data: bytes) -> list[str]:
    # SQLite stores text as UTF-8; TensorBoard events and the HTML are UTF-8 too. UTF-16 for good measure.
    return [f for f in FRAGMENTS if f.encode() in data or f.encode("utf-16-le") in data]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(openai.OpenAI, "_calculate_retry_timeout", lambda self, *args, **kwargs: 0.0)


class EchoingJudgeServer:
    """Scores every request 7 or 8 (top log-probabilities); request number `fail_at` is an error that
    quotes the request's Authorization header. Keeps every request's headers."""

    def __init__(self, fail_at: int | None = 3):
        self.fail_at = fail_at
        self.authorizations: list[str] = []

    def __call__(self, request):
        self.authorizations.append(request.headers.get("authorization", ""))
        if len(self.authorizations) == self.fail_at:
            message = f"invalid request from a client sending Authorization: {request.headers['authorization']}"
            return httpx.Response(400, json={"error": {"message": message}})
        body = json.loads(request.content)
        top = [{"token": " 7", "logprob": math.log(0.6), "bytes": None},
               {"token": " 8", "logprob": math.log(0.4), "bytes": None}]
        n = body.get("n", 1)
        choices = [{"index": i, "message": {"role": "assistant", "content": "7"}, "finish_reason": "stop",
                    "logprobs": {"content": [{"token": " 7", "logprob": math.log(0.6), "bytes": None,
                                              "top_logprobs": top}]}} for i in range(n)]
        return httpx.Response(200, json={"id": "c", "object": "chat.completion", "created": 0, "model": "judge-m",
                                         "choices": choices,
                                         "usage": {"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n}})


def run_config(policy_dir: str, out) -> dict:
    return {
        "name": "secrets",
        "output_dir": str(out),
        "tracking": "tensorboard",
        "model": {"name": policy_dir, "dtype": "float32", "device": "cpu"},
        "tasks": {"train_size": 6, "heldout_size": 2, "prompts_per_iteration": 3, "min_heldout": 2},
        "generation": {"samples_per_prompt": 2, "max_new_tokens": 4},
        "judge": {"batch_size": 8, "model": URL,
                  "server": {"model_name": "judge-m", "api_key_env": ENV, "max_retries": 0, "concurrency": 2}},
        "training": {"lora_r": 2, "lora_alpha": 4, "batch_size": 4},
        "evaluation": {"max_new_tokens": 4},
        "stopping": {"max_iterations": 1, "patience": 5},
    }


def test_a_run_with_a_keyed_judge_server_writes_the_key_nowhere(tiny_llama, tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv(ENV, KEY)
    server = EchoingJudgeServer(fail_at=3)
    client = httpx.Client(transport=httpx.MockTransport(server))
    real_judge_engine = loop_module.judge_engine
    monkeypatch.setattr(loop_module, "judge_engine", lambda config, engine: real_judge_engine(config, engine, client))
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "autodidact"):  # libraries may set their own levels
        caplog.set_level(logging.DEBUG, logger=name)

    result = autodidact.loop.run(run_config(tiny_llama, tmp_path))
    run_dir = tmp_path / "secrets"
    report = write_report(run_dir)

    # Not vacuous: the key reached the server, and the server's echo of it reached the engine.
    assert result.stop_reason == "reached max_iterations=1"
    assert len(server.authorizations) > 10 and set(server.authorizations) == {f"Bearer {KEY}"}
    with RunStore(run_dir / "run.sqlite") as store:
        errors = [j.error for it in (0, 1) for j in store.judgments(it) if j.error]
    assert any("HTTP 400" in e and "Authorization: Bearer ***" in e for e in errors), errors

    # Where the key could end up: every file of the run, the logs, the console.
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    names = {p.relative_to(run_dir).as_posix() for p in files}
    assert {"config.yaml", "run.sqlite", report.relative_to(run_dir).as_posix()} <= names
    assert any(n.startswith("tracking/") for n in names), names  # the TensorBoard event files
    for path in files:
        assert not leaks_in_bytes(path.read_bytes()), path
    config_text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert f"api_key_env: {ENV}" in config_text  # the variable's name is saved, its value is not
    assert caplog.records
    for record in caplog.records:
        assert not leaks(record.getMessage()) and not leaks(record.exc_text or ""), record.getMessage()
    assert not leaks(caplog.text)
    out, err = capfd.readouterr()
    assert not leaks(out) and not leaks(err)
    assert not leaks(repr(result)) and not leaks(str(result.__dict__))


def test_the_key_is_only_in_the_request_headers(monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    seen: list[tuple[str, bytes]] = []
    server = EchoingJudgeServer(fail_at=None)

    def record(request):
        seen.append((str(request.url), request.content))
        return server(request)

    config = validate_config({"judge": {"model": URL, "server": {"model_name": "judge-m", "api_key_env": ENV}}})
    engine = judge_engine(config, None, httpx.Client(transport=httpx.MockTransport(record)))
    engine.generate([engine.render([{"role": "user", "content": "2+2?"}])], SamplingParams(n=1, temperature=0.0))
    assert set(server.authorizations) == {f"Bearer {KEY}"}
    assert all(not leaks(url) and not leaks_in_bytes(body) for url, body in seen)  # not in the URL or the body
    saved = to_yaml(config) + json.dumps(config.model_dump(mode="json"))
    assert not leaks(repr(engine)) and not leaks(saved)


def failing_engine(reply) -> OpenAIEngine:
    return OpenAIEngine(URL, "judge-m", api_key=KEY, max_retries=1,
                        http_client=httpx.Client(transport=httpx.MockTransport(reply)))


@pytest.mark.parametrize(
    "failure",
    ["status 401", "status 500 after retries", "connection error", "timeout", "malformed response"],
)
def test_request_errors_never_carry_the_key(failure, caplog):
    """The reason a request failed is stored and logged: it is redacted, whatever the server or the
    transport put in it, and the engine logs nothing that carries the key either."""

    def reply(request):
        header = request.headers["authorization"]
        if failure.startswith("status"):
            status = int(failure.split()[1])
            return httpx.Response(status, json={"error": {"message": f"rejected {header}"}})
        if failure == "connection error":
            raise httpx.ConnectError(f"connection refused for {header}", request=request)
        if failure == "timeout":
            raise httpx.ReadTimeout(f"timed out ({header})", request=request)
        return httpx.Response(200, json={"choices": [{"message": header}]})  # not an OpenAI answer

    caplog.set_level(logging.DEBUG)
    engine = failing_engine(reply)
    [[completion]] = engine.generate(["plain prompt"], SamplingParams(n=1, temperature=0.0))
    [row] = engine.continuation_logprobs(["plain prompt"], ["1", "2"])
    assert completion.error and row.error
    assert not leaks(completion.error) and not leaks(row.error)
    assert not leaks(caplog.text)


def test_a_key_cut_by_the_length_limit_is_not_left_in_part():
    prefix = "the judge server answered HTTP 400: Error code: 400 - "
    for keep in range(1, len(KEY)):  # the cut falls inside the key, after `keep` of its characters
        padding = "x" * (300 - len(prefix) - keep)
        engine = failing_engine(lambda request, p=padding: httpx.Response(
            400, json={"error": {"message": p + request.headers["authorization"].removeprefix("Bearer ")}}))
        [[completion]] = engine.generate(["plain prompt"], SamplingParams(n=1, temperature=0.0))
        assert completion.error.startswith(prefix) and not leaks(completion.error), (keep, completion.error)
