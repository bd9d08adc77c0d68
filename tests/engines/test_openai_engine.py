"""OpenAIEngine against a fake OpenAI-compatible server (a mock transport in the real `openai` client).

No server runs and no retry waits: the client's backoff delay is patched to 0,
and each test counts the HTTP requests the server saw.
"""

from __future__ import annotations

import json
import math

import openai
import pytest

from autodidact.config import to_yaml, validate_config
from autodidact.engines import FailedRow, SamplingParams, request_error
from autodidact.engines.openai_engine import CHAT_MARK, OpenAIEngine, _split_chat
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem
from autodidact.judges.direct import DirectScoreJudge
from autodidact.judges.external import judge_engine
from autodidact.records import Prompt

try:  # the HTTP library the installed openai client is built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai releases
    import httpx

URL = "http://judge.test/v1"
PROMPT = Prompt("p1", "arithmetic", "train", [{"role": "user", "content": "What is 2 + 2?"}], reference=4)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(openai.OpenAI, "_calculate_retry_timeout", lambda self, *args, **kwargs: 0.0)


class FakeServer:
    """Answers /chat/completions and /completions from `reply(path, body) -> httpx.Response`; keeps every request."""

    def __init__(self, reply):
        self.reply = reply
        self.requests: list[tuple[str, dict, dict]] = []

    def __call__(self, request):
        body = json.loads(request.content)
        self.requests.append((request.url.path, body, dict(request.headers)))
        return self.reply(request.url.path, body)

    def engine(self, **kwargs) -> OpenAIEngine:
        kwargs.setdefault("max_retries", 2)
        return OpenAIEngine(URL, "judge-m", http_client=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)


def chat_reply(content: str = "", top: dict[str, float] | None = None, n: int = 1) -> httpx.Response:
    logprobs = None
    if top is not None:
        alternatives = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]
        first = max(top, key=top.get)
        logprobs = {"content": [{"token": first, "logprob": top[first], "bytes": None, "top_logprobs": alternatives}]}
    choices = [
        {"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
         "logprobs": logprobs}
        for i in range(n)
    ]
    usage = {"prompt_tokens": 10, "completion_tokens": 3 * n, "total_tokens": 10 + 3 * n}
    return httpx.Response(200, json={"id": "c1", "object": "chat.completion", "created": 0, "model": "judge-m",
                                     "choices": choices, "usage": usage})


def text_reply(text: str, top: dict[str, float] | None = None) -> httpx.Response:
    logprobs = None
    if top is not None:
        logprobs = {"tokens": [text], "token_logprobs": [0.0], "top_logprobs": [top], "text_offset": [0]}
    choice = {"index": 0, "text": text, "finish_reason": "length", "logprobs": logprobs}
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    return httpx.Response(200, json={"id": "t1", "object": "text_completion", "created": 0, "model": "judge-m",
                                     "choices": [choice], "usage": usage})


LN = math.log


def score_tops(path, body):
    """P(" 7")=.5, P(" 8")=.3, P(" 1")=.15 after "Score:"; after "Score: 1", P("0")=2/3."""
    prefix = body["messages"][-1]["content"] if path.endswith("chat/completions") else body["prompt"]
    if prefix.endswith("Score: 1"):
        return chat_reply(top={"0": LN(2 / 3), ".": LN(1 / 3)})
    return chat_reply(top={" 7": LN(0.5), " 8": LN(0.3), " 1": LN(0.15), "Score": LN(0.05)})


def test_direct_judge_over_chat_server_uses_top_logprobs_and_follows_split_tokens():
    server = FakeServer(score_tops)
    [judgment] = DirectScoreJudge(server.engine()).judge([JudgeItem("s1", PROMPT, "4")]).judgments
    # P(" 10") = .15 * 2/3 = .1; P(exactly " 1") = .15 - .1 = .05;
    # score = (.05*1 + .5*7 + .3*8 + .1*10) / (.05 + .5 + .3 + .1) = 6.95 / .95
    assert judgment.score == pytest.approx(6.95 / 0.95, abs=1e-9)
    assert judgment.error is None
    # One request for the score token, one to follow " 1" into "10".
    assert [body["messages"][-1]["content"] for _, body, _ in server.requests] == ["Score:", "Score: 1"]
    path, body, _ = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"][0]["role"] == "user" and "What is 2 + 2?" in body["messages"][0]["content"]
    assert body["messages"][-1]["role"] == "assistant"  # the answer prefix, continued by the server
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)


def test_continuation_missing_from_top_logprobs_is_minus_inf():
    engine = FakeServer(score_tops).engine()
    [row] = engine.continuation_logprobs([engine.render(PROMPT.messages) + "Score: "], ["7", "8", "9", "10"])
    assert row[:2] == pytest.approx([LN(0.5), LN(0.3)])
    assert row[2] == -math.inf
    assert row[3] == pytest.approx(LN(0.1))


class WordTokenizer:
    """A chat template and whitespace token counts: enough for the /completions path."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}</s>" for m in messages) + "<assistant>"

    def __call__(self, text, add_special_tokens=False):
        return type("Encoding", (), {"input_ids": text.split()})()


def test_completions_endpoint_with_local_template_and_reasking_for_n():
    def reply(path, body):
        if body.get("logprobs"):
            return text_reply(" 9", top={" 9": LN(0.9), " 3": LN(0.1)})
        return text_reply(f"sample with seed {body['seed']}")

    server = FakeServer(reply)
    engine = server.engine(tokenizer=WordTokenizer())
    prompt = engine.render(PROMPT.messages)
    assert prompt == "<user>What is 2 + 2?</s><assistant>"
    [row] = engine.continuation_logprobs([prompt + "Score: "], ["3", "9"])
    assert row == pytest.approx([LN(0.1), LN(0.9)])
    assert server.requests[0][0] == "/v1/completions"
    assert server.requests[0][1]["prompt"] == prompt + "Score:"
    assert server.requests[0][1]["logprobs"] == 20
    assert server.requests[0][1]["add_special_tokens"] is False  # the template already holds them
    # The server returns one choice per request; the engine asks again with the next seed.
    [completions] = engine.generate([prompt], SamplingParams(n=2, temperature=0.7, seed=5, max_new_tokens=8))
    assert [c.text for c in completions] == ["sample with seed 5", "sample with seed 6"]
    assert [c.num_tokens for c in completions] == [4, 4]
    assert [body["n"] for _, body, _ in server.requests[1:]] == [2, 1]


def test_generate_mode_parses_the_servers_text():
    server = FakeServer(lambda path, body: chat_reply("8"))
    [judgment] = DirectScoreJudge(server.engine(), mode="generate").judge([JudgeItem("s1", PROMPT, "4")]).judgments
    assert judgment.score == 8.0
    assert "logprobs" not in server.requests[0][1]


def test_server_error_after_retries_is_a_failed_judgment_with_the_reason():
    server = FakeServer(lambda path, body: httpx.Response(500, json={"error": {"message": "model crashed"}}))
    [judgment] = DirectScoreJudge(server.engine(max_retries=2)).judge([JudgeItem("s1", PROMPT, "4")]).judgments
    assert judgment.score is None
    assert judgment.error == "judge engine: the judge server answered HTTP 500: Error code: 500 - model crashed"
    assert len(server.requests) == 3  # the first attempt and 2 retries


def test_timeout_is_a_failed_judgment_not_a_crash():
    def hang(request):
        raise httpx.ReadTimeout("read timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(hang))
    engine = OpenAIEngine(URL, "judge-m", timeout=0.5, max_retries=1, http_client=client)
    [judgment] = DirectScoreJudge(engine, mode="generate").judge([JudgeItem("s1", PROMPT, "4")]).judgments
    assert judgment.score is None
    assert judgment.error == "judge engine: request timed out after 0.5s (1 retries)"
    [row] = engine.continuation_logprobs(["x"], ["0", "1"])
    assert isinstance(row, FailedRow) and row == [-math.inf, -math.inf]
    assert request_error(row) == "request timed out after 0.5s (1 retries)"


def test_one_failing_request_fails_only_its_own_judgment():
    def reply(path, body):
        if "BAD" in body["messages"][0]["content"]:
            return httpx.Response(400, json={"error": {"message": "prompt too long"}})
        return score_tops(path, body)

    items = [JudgeItem("s1", PROMPT, "4"), JudgeItem("s2", PROMPT, "BAD"), JudgeItem("s3", PROMPT, "5")]
    judgments = DirectScoreJudge(FakeServer(reply).engine(max_retries=0)).judge(items).judgments
    assert [j.sample_id for j in judgments] == ["s1", "s2", "s3"]
    assert [j.score is None for j in judgments] == [False, True, False]
    assert judgments[1].error == "judge engine: the judge server answered HTTP 400: Error code: 400 - prompt too long"


def test_unreachable_server_and_missing_logprobs_fail_with_reasons():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    engine = OpenAIEngine(URL, "judge-m", max_retries=0, http_client=client)
    [judgment] = DirectScoreJudge(engine).judge([JudgeItem("s1", PROMPT, "4")]).judgments
    assert judgment.score is None
    assert judgment.error == f"judge engine: cannot reach the judge server at {URL} (0 retries): connection refused"

    no_logprobs = FakeServer(lambda path, body: chat_reply("7")).engine()
    [judgment] = DirectScoreJudge(no_logprobs).judge([JudgeItem("s1", PROMPT, "4")]).judgments
    assert judgment.score is None
    assert judgment.error == "judge engine: the judge server returned no log-probabilities; set judge.mode=generate"


def server_config(mode: str = "logprobs", **server) -> object:
    return validate_config({"judge": {"model": URL, "mode": mode, "server": {"model_name": "judge-m", **server}}})


def test_logprobs_mode_on_a_server_without_them_is_a_config_error():
    server = FakeServer(lambda path, body: chat_reply("OK"))  # never returns log-probabilities
    transport = httpx.Client(transport=httpx.MockTransport(server))
    with pytest.raises(AutodidactError, match=r"judge.mode: 'logprobs' needs log-probabilities.*judge.mode=generate"):
        judge_engine(server_config(), policy_engine=None, http_client=transport)
    engine = judge_engine(server_config(mode="generate"), policy_engine=None, http_client=transport)
    assert isinstance(engine, OpenAIEngine) and engine.supports_logprobs is False


def test_unreachable_server_is_reported_at_start():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(AutodidactError, match=r"judge.model: the judge server cannot be used: cannot reach"):
        judge_engine(server_config(max_retries=0), None, httpx.Client(transport=httpx.MockTransport(refuse)))


def test_api_key_comes_from_the_environment_and_is_never_stored_or_shown(monkeypatch):
    monkeypatch.setenv("AUTODIDACT_TEST_JUDGE_KEY", "sk-sekrit-123")
    # A server that echoes the credentials it got into its error message.
    server = FakeServer(
        lambda path, body: chat_reply(top={" 5": 0.0})
        if body["max_tokens"] == 1
        else httpx.Response(401, json={"error": {"message": "bad key sk-sekrit-123"}})
    )
    config = server_config(api_key_env="AUTODIDACT_TEST_JUDGE_KEY")
    engine = judge_engine(config, None, httpx.Client(transport=httpx.MockTransport(server)))
    assert server.requests[0][2]["authorization"] == "Bearer sk-sekrit-123"
    assert "sk-sekrit" not in to_yaml(config) and "sk-sekrit" not in repr(engine)
    [[completion]] = engine.generate([engine.render(PROMPT.messages)], SamplingParams(n=1, temperature=0.0))
    assert completion.error == "the judge server answered HTTP 401: Error code: 401 - bad key ***"

    monkeypatch.delenv("AUTODIDACT_TEST_JUDGE_KEY")
    with pytest.raises(AutodidactError, match="AUTODIDACT_TEST_JUDGE_KEY is not set"):
        judge_engine(config, None, httpx.Client(transport=httpx.MockTransport(server)))
    with pytest.raises(AutodidactError, match="not the key itself") as err:
        server_config(api_key_env="sk-sekrit-123")
    assert "sk-sekrit" not in str(err.value)


def test_render_without_tokenizer_keeps_the_messages():
    engine = OpenAIEngine(URL, "judge-m")
    rendered = engine.render(PROMPT.messages) + "Score: "
    assert rendered.startswith(CHAT_MARK)
    assert _split_chat(rendered) == (PROMPT.messages, "Score: ")
    assert _split_chat("plain text") == (None, "plain text")
