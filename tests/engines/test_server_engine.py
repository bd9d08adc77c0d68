"""The policy on an OpenAI-compatible server: a real llama.cpp server, and a scripted stub for the faults.

Against llama.cpp (llama-cpp-python's server on the bundled SmolLM2 GGUF): sampling n completions at a
temperature, log-probability judging, and a 'merged' reload whose restart command really restarts the
server on the exported GGUF (its log-probabilities then match the merged model, not the base).

Against the stub (http.server, no model): vLLM's runtime LoRA API as the engine drives it, retries of
429/5xx and malformed JSON within `max_retries` and then one clear error, an unreachable server, and
the config errors that need no server at all. The client's backoff is patched to 0.
"""

from __future__ import annotations

import math
import sys
import types

import openai
import pytest
import torch

from autodidact.config import validate_config
from autodidact.engines import FailedRow, SamplingParams, TransformersEngine
from autodidact.engines import openai_engine as openai_engine_module
from autodidact.engines.serving import ServerPolicyEngine, build_policy_engine
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem
from autodidact.judges.direct import DirectScoreJudge
from autodidact.models import bundled_gguf, resolve_model
from autodidact.records import Prompt
from llama_server import LlamaServer, StubServer, completion, models, needs_llama_server, one_torch_thread  # noqa: F401

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(openai.OpenAI, "_calculate_retry_timeout", lambda self, *args, **kwargs: 0.0)
    monkeypatch.setattr(openai_engine_module, "MALFORMED_RETRY_DELAY", 0.0)


def server_config(url: str, name: str = "default", **server):
    return validate_config({
        "name": "r",
        "model": {"name": name, "device": "cpu", "engine": "server",
                  "server": {"url": url, "max_retries": 2, "timeout": 60, **server}},
    })


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model("default"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    server = LlamaServer(bundled_gguf(), tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


# --- a real llama.cpp server -----------------------------------------------------------------


@needs_llama_server
@pytest.mark.integration
def test_generates_n_samples_at_a_temperature_through_llama_cpp(llama, tokenizer):
    engine = build_policy_engine(server_config(llama.url), None, tokenizer)
    assert isinstance(engine, ServerPolicyEngine) and engine.requests.model == llama.model_id  # the served name
    prompts = [engine.render(QUESTION), engine.render([{"role": "user", "content": "Name a colour."}])]
    assert prompts[0] == tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    sampled = engine.generate(prompts, SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=3))
    assert [len(c) for c in sampled] == [3, 3]
    for completions in sampled:
        assert all(c.text and c.error is None and 0 < c.num_tokens <= 12 for c in completions)
        assert len({c.text for c in completions}) >= 2  # seeds 3, 4, 5 sample differently
    # Greedy: the most likely answer. (Not compared across calls: llama.cpp reuses the cached prompt prefix,
    # and a near-tie may then break the other way.)
    [[greedy]] = engine.generate(prompts[:1], SamplingParams(n=1, temperature=0.0, max_new_tokens=12))
    assert "4" in greedy.text


@needs_llama_server
@pytest.mark.integration
def test_logprob_judging_through_llama_cpp(llama, tokenizer):
    engine = build_policy_engine(server_config(llama.url), None, tokenizer)
    assert engine.supports_logprobs
    prompt = engine.render(QUESTION) + "The answer is"
    [row] = engine.continuation_logprobs([prompt], [" 4", " 5", " banana"])
    assert math.isfinite(row[0]) and row[0] > math.log(0.2)  # the model knows 2 + 2
    assert row[0] > row[1]
    assert row[2] == -math.inf or row[2] < row[1]  # not among the top alternatives, or far less likely
    item = JudgeItem("s1", Prompt("p1", "arithmetic", "train", QUESTION, reference=4), "4")
    [judgment] = DirectScoreJudge(engine).judge([item]).judgments
    assert judgment.error is None and 0.0 <= judgment.score <= 10.0


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory):
    """A run directory with an iteration-1 LoRA checkpoint (random, non-zero) on the bundled model, and the
    merged model it stands for."""
    from peft import LoraConfig, get_peft_model

    from autodidact.models import load_model

    base, tokenizer = load_model("default", "float32", "cpu")
    torch.manual_seed(0)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]  # q and k: llama.cpp permutes their rows
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=modules, init_lora_weights=False))
    run_dir = tmp_path_factory.mktemp("run")
    checkpoint = run_dir / "checkpoints" / "iter-1"
    policy.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    return checkpoint, policy.eval(), tokenizer  # the adapter unmerged: an independent reference


def _top_logprobs(client, model: str, prompt: str) -> dict[str, float]:
    reply = client.completions.create(model=model, prompt=prompt, max_tokens=1, temperature=0, logprobs=8)
    return dict(reply.choices[0].logprobs.top_logprobs[0])


@needs_llama_server
@pytest.mark.integration
def test_merged_reload_restarts_llama_cpp_on_the_exported_gguf(adapter_run, tokenizer, tmp_path_factory):
    checkpoint, policy, _ = adapter_run
    server = LlamaServer(bundled_gguf(), tmp_path_factory.mktemp("restarted"))
    try:
        config = server_config(server.url, reload="merged", restart_command=server.restart_command())
        engine = build_policy_engine(config, None, tokenizer)
        prompt = engine.render(QUESTION)
        before = _top_logprobs(engine.requests.client, engine.requests.model, prompt)

        engine.load_checkpoint(checkpoint, 1)

        gguf = checkpoint.resolve().parent.parent / "served" / "iter-1" / "model.gguf"
        assert gguf.is_file() and not (gguf.parent / "hf").exists()  # only what the command names
        assert engine.requests.model == str(gguf)  # llama.cpp names its model by the file it loaded
        after = _top_logprobs(engine.requests.client, engine.requests.model, prompt)
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            expected = torch.log_softmax(policy(ids).logits[0, -1], dim=-1)
        top = {tokenizer.decode([int(i)]): float(expected[i]) for i in expected.topk(8).indices}
        shared = sorted(set(after) & set(top))
        assert len(shared) >= 4
        # The restarted server computes the merged model (float16 weights, llama.cpp's kernels: 0.01 seen) ...
        error_after = max(abs(after[t] - top[t]) for t in shared)
        assert error_after < 0.05
        # ... not the base it served before (0.5 seen).
        error_before = max(abs(before[t] - top[t]) if t in before else math.inf for t in shared)
        assert error_before > 10 * error_after
        [[sample]] = engine.generate([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=4))
        assert sample.num_tokens > 0
    finally:
        server.stop()


# --- the stub: vLLM's runtime LoRA API -----------------------------------------------------------


class FakeVLLM:
    """The replies of `vllm serve --enable-lora` with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True."""

    def __init__(self):
        self.loaded: dict[str, str] = {}
        self.refuse_loads = False

    def __call__(self, path: str, body: dict):
        if path == "/v1/models":
            return 200, models("base-model", *self.loaded)
        if path == "/v1/load_lora_adapter":
            if self.refuse_loads:  # no runtime updating: the route does not exist
                return 404, {"detail": "Not Found"}
            if body["lora_name"] in self.loaded:
                return 400, {"object": "error", "message": f"The lora adapter '{body['lora_name']}' has already been "
                             "loaded.", "type": "InvalidUserInput", "code": 400}
            self.loaded[body["lora_name"]] = body["lora_path"]
            return 200, f"Success: LoRA adapter '{body['lora_name']}' added successfully.".encode()
        if path == "/v1/unload_lora_adapter":
            if self.loaded.pop(body["lora_name"], None) is None:
                return 404, {"object": "error", "message": "not found", "type": "NotFoundError", "code": 404}
            return 200, f"Success: LoRA adapter '{body['lora_name']}' removed successfully.".encode()
        if body.get("model") not in ("base-model", *self.loaded):
            return 404, {"object": "error", "message": f"The model `{body.get('model')}` does not exist.", "code": 404}
        return 200, completion(f"from {body['model']}", top={" 7": -0.1} if body.get("logprobs") else None)


@pytest.fixture
def stub():
    servers: list[StubServer] = []

    def start(reply) -> StubServer:
        servers.append(StubServer(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _checkpoint(root, iteration: int):
    path = root / "checkpoints" / f"iter-{iteration}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text("{}")
    return path


def test_lora_reload_follows_vllms_runtime_api(stub, tokenizer, tmp_path):
    vllm = FakeVLLM()
    server = stub(vllm)
    engine = build_policy_engine(server_config(server.url, reload="lora"), None, tokenizer)
    assert engine.requests.model == "base-model"  # model.server.model_name unset: the first listed
    params = SamplingParams(n=1, temperature=0.0)

    first = _checkpoint(tmp_path, 1)
    engine.load_checkpoint(first, 1)
    load = ("/v1/load_lora_adapter", {"lora_name": "r-iter-1", "lora_path": str(first.resolve())})
    assert server.requests[-2][:2] == load
    assert server.requests[-1][1]["model"] == "r-iter-1"  # the adapter is probed before it serves
    assert engine.generate(["hi"], params)[0][0].text == "from r-iter-1"

    before = len(server.requests)
    engine.load_checkpoint(_checkpoint(tmp_path, 2), 2)
    # The new adapter is loaded and probed first, then the previous one is unloaded.
    assert server.paths()[before:] == ["/v1/load_lora_adapter", "/v1/completions", "/v1/unload_lora_adapter"]
    assert server.requests[-1][1] == {"lora_name": "r-iter-1"} and list(vllm.loaded) == ["r-iter-2"]
    assert engine.generate(["hi"], params)[0][0].text == "from r-iter-2"

    before = len(server.requests)
    engine.load_checkpoint(_checkpoint(tmp_path, 2), 2)  # retrained (or resumed): the name is taken
    assert [p for p in server.paths()[before:] if "lora" in p] == [
        "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/load_lora_adapter"]
    assert list(vllm.loaded) == ["r-iter-2"]

    engine.serve_base()
    assert vllm.loaded == {} and engine.generate(["hi"], params)[0][0].text == "from base-model"


def test_lora_reload_refused_is_one_clear_error(stub, tokenizer, tmp_path):
    vllm = FakeVLLM()
    vllm.refuse_loads = True
    engine = build_policy_engine(server_config(stub(vllm).url, reload="lora"), None, tokenizer)
    with pytest.raises(AutodidactError) as err:
        engine.load_checkpoint(_checkpoint(tmp_path, 1), 1)
    message = str(err.value)
    assert "\n" not in message and "HTTP 404" in message
    assert "--enable-lora" in message and "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in message
    assert engine.requests.model == "base-model"  # still the weights it served
    full = tmp_path / "full"
    full.mkdir()
    with pytest.raises(AutodidactError, match="holds no adapter.*reload 'merged'"):
        engine.load_checkpoint(full, 1)


def test_reload_none_keeps_the_weights_and_says_so_once(stub, tokenizer, tmp_path, caplog):
    server = stub(FakeVLLM())
    engine = build_policy_engine(server_config(server.url), None, tokenizer)
    with caplog.at_level("WARNING"):
        engine.load_checkpoint(_checkpoint(tmp_path, 1), 1)
        engine.load_checkpoint(_checkpoint(tmp_path, 2), 2)
    assert [r.getMessage().count("keeps its weights") for r in caplog.records] == [1]
    assert not any("lora" in p for p in server.paths())


# --- the stub: faults -------------------------------------------------------------------------------


class Script:
    """Replies from a list, one per request after the start-up probe; the last one repeats."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.probed = False

    def __call__(self, path: str, body: dict):
        if path == "/v1/models":
            return 200, models("m")
        if not self.probed:
            self.probed = True
            return 200, completion("OK", top={"OK": -0.01})
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


GOOD = (200, completion("fine"))
BUSY = (429, {"error": {"message": "slow down", "type": "rate_limit"}})
DOWN = (503, {"error": {"message": "overloaded"}})
BROKEN = (200, b'{"id": "c", "choices": [{"text": "trunc')
NO_TEXT = (200, {"id": "c", "object": "text_completion", "created": 0, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "stop"}]})


@pytest.mark.parametrize(
    ("replies", "requests"),
    [((BUSY, BUSY, GOOD), 3), ((DOWN, GOOD), 2), ((BROKEN, GOOD), 2), ((NO_TEXT, BROKEN, GOOD), 3)],
    ids=["429-twice", "503-once", "malformed-json-once", "no-text-then-malformed"],
)
def test_retryable_faults_are_retried_within_max_retries(stub, tokenizer, replies, requests):
    server = stub(Script(*replies))
    engine = build_policy_engine(server_config(server.url, max_retries=2), None, tokenizer)
    sent = len(server.requests)
    [[completion_]] = engine.generate(["hi"], SamplingParams(n=1, temperature=0.0))
    assert completion_.text == "fine" and completion_.error is None
    assert len(server.requests) - sent == requests


@pytest.mark.parametrize(
    ("reply", "reason"),
    [(DOWN, "the policy server answered HTTP 503"), (BUSY, "HTTP 429"),
     (BROKEN, "the policy server sent a malformed reply 3 times: JSONDecodeError"),
     (NO_TEXT, "malformed reply 3 times: TypeError: a choice without text")],
    ids=["503", "429", "malformed-json", "no-text"],
)
def test_persistent_faults_raise_one_clear_error_never_a_partial_result(stub, tokenizer, reply, reason):
    good_then_bad = Script(GOOD, reply)  # the first prompt is answered, the second never
    server = stub(good_then_bad)
    engine = build_policy_engine(server_config(server.url, max_retries=2, concurrency=1), None, tokenizer)
    sent = len(server.requests)
    with pytest.raises(AutodidactError) as err:
        engine.generate(["first", "second"], SamplingParams(n=1, temperature=0.0))
    message = str(err.value)
    assert "\n" not in message and reason in message
    assert message.startswith("model.server: 1 of 2 generation requests failed") and "autodidact resume" in message
    assert len(server.requests) - sent == 1 + 3  # one answer, then max_retries + 1 attempts
    # Log-probability rows keep the judge's contract: a FailedRow (a failed judgment), not an exception.
    [row] = engine.continuation_logprobs(["Score:"], [" 1", " 2"])
    assert isinstance(row, FailedRow) and row == [-math.inf, -math.inf] and reason.split(":")[0] in row.error


def test_unreachable_server_fails_at_start_with_the_fix(tokenizer):
    from llama_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(AutodidactError) as err:
        build_policy_engine(server_config(url, max_retries=1), None, tokenizer)
    message = str(err.value)
    assert "\n" not in message and f"cannot list the models of {url}" in message
    assert "fix model.server.url" in message
    with pytest.raises(AutodidactError, match="cannot be used .*cannot reach the policy server.*model.server.url"):
        build_policy_engine(server_config(url, max_retries=1, model_name="m"), None, tokenizer)


def test_wrong_model_name_and_key(stub, tokenizer, monkeypatch):
    server = stub(FakeVLLM())
    with pytest.raises(AutodidactError, match=r"cannot be used \(the policy server answered HTTP 404.*model_name"):
        build_policy_engine(server_config(server.url, model_name="nope"), None, tokenizer)
    monkeypatch.delenv("POLICY_KEY", raising=False)
    with pytest.raises(AutodidactError, match="POLICY_KEY is not set"):
        build_policy_engine(server_config(server.url, api_key_env="POLICY_KEY"), None, tokenizer)
    monkeypatch.setenv("POLICY_KEY", "sekrit")
    build_policy_engine(server_config(server.url, api_key_env="POLICY_KEY"), None, tokenizer)
    assert server.requests[-1][2]["authorization"] == "Bearer sekrit"


def test_reload_settings_that_cannot_work_fail_before_any_request(tokenizer, tiny_llama):
    url = "http://127.0.0.1:9/v1"  # never contacted: these are config errors
    with pytest.raises(AutodidactError, match=r"needs model.server.restart_command with \{checkpoint\}"):
        build_policy_engine(server_config(url, reload="merged"), None, tokenizer)
    with pytest.raises(AutodidactError, match=r"needs model.server.restart_command"):
        build_policy_engine(server_config(url, reload="merged", restart_command="systemctl restart x"), None, tokenizer)
    config = server_config(url, reload="lora").model_copy(deep=True)
    config.training.finetune = "full"
    with pytest.raises(AutodidactError, match="reload 'lora' needs training.finetune 'lora'"):
        build_policy_engine(config, None, tokenizer)
    hf_base = server_config(url, name=tiny_llama, reload="merged", restart_command="restart {gguf}")
    with pytest.raises(AutodidactError, match="needs a base model loaded from a GGUF file.*convert_hf_to_gguf"):
        build_policy_engine(hf_base, None, tokenizer)


def test_restart_command_failures_are_one_line(stub, tokenizer, tmp_path, monkeypatch):
    server = stub(FakeVLLM())
    failing = f"{sys.executable} -c \"import sys; print('port in use'); sys.exit(3)\" {{checkpoint}}"
    engine = build_policy_engine(server_config(server.url, reload="merged", restart_command=failing), None, tokenizer)
    monkeypatch.setattr("autodidact.engines.serving.merged_model", lambda model_name, checkpoint: (_Weights(), _Weights(), ""))
    with pytest.raises(AutodidactError, match=r"exited with status 3 \(port in use\); fix the command"):
        engine.load_checkpoint(_checkpoint(tmp_path, 1), 1)
    engine.server.restart_command = "no-such-program-here {checkpoint}"
    with pytest.raises(AutodidactError, match="'no-such-program-here' was not found"):
        engine.load_checkpoint(_checkpoint(tmp_path, 1), 1)
    engine.server.restart_command = f"{sys.executable} -c \"import time; time.sleep(30)\" {{checkpoint}}"
    engine.restart_wait = 0.5
    with pytest.raises(AutodidactError, match="did not return within 0.5s; it must start the server in the background"):
        engine.load_checkpoint(_checkpoint(tmp_path, 1), 1)


class _Weights:
    """Stands in for the merged model and tokenizer where only the restart is tested."""

    def to(self, dtype):
        return self

    def save_pretrained(self, path):
        path.mkdir(parents=True, exist_ok=True)


# --- the other engines ---------------------------------------------------------------------------------


def test_transformers_and_vllm_engines_are_built_as_configured(tiny_llama, monkeypatch):
    from autodidact.models import load_model

    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    config = validate_config({"model": {"name": tiny_llama}, "generation": {"batch_size": 7}})
    engine = build_policy_engine(config, model, tokenizer)
    assert isinstance(engine, TransformersEngine) and engine.model is model
    assert engine.decode_options.max_sequences == 7

    calls = []
    fake = types.ModuleType("autodidact.engines.vllm_engine")
    fake.VLLMEngine = types.SimpleNamespace(
        from_config=lambda config, tokenizer: calls.append((config, tokenizer)) or "vllm"
    )
    monkeypatch.setitem(sys.modules, "autodidact.engines.vllm_engine", fake)
    vllm_config = validate_config({"model": {"name": tiny_llama, "engine": "vllm"}})
    assert build_policy_engine(vllm_config, model, tokenizer) == "vllm"
    assert calls == [(vllm_config, tokenizer)]
