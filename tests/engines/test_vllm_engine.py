"""VLLMEngine's request/response mapping, against a fake `vllm` module (no GPU, no vLLM).

The fake records every call and answers with objects shaped like vLLM's
`RequestOutput` / `CompletionOutput`; its prompt log-probabilities are a list
with `None` first, then one `{token id: Logprob}` dict per prompt token, as
`SamplingParams(prompt_logprobs=0)` returns them; with `logprobs=k`, a sample's
`logprobs` holds one such dict of at most k next-token alternatives. What this
cannot show is that real vLLM behaves as the fake does: that needs a GPU, and
has not been run.
"""

from __future__ import annotations

import functools
import math
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from autodidact.config import validate_config
from autodidact.engines import SamplingParams, ServesCheckpoints, TransformersEngine
from autodidact.engines.vllm_engine import MISSING, VLLMEngine
from autodidact.errors import AutodidactError
from tiny_models import build_model, build_tokenizer

USER = [{"role": "user", "content": "What is 2 + 2?"}]
LONGER = [{"role": "user", "content": "What is 21 + 77? Answer with just the number."}]


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: Any = None
    finish_reason: str | None = "stop"
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput]
    finished: bool = True


class FakeSamplingParams:
    DEFAULTS = dict(n=1, temperature=1.0, top_p=1.0, max_tokens=16, seed=None, logprobs=None, prompt_logprobs=None)

    def __init__(self, **kwargs):
        self.__dict__.update({**self.DEFAULTS, **kwargs})


@dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class FakeLLM:
    """Answers `generate` from `reply(prompt ids, k) -> (token ids, finish_reason)`,
    `logprobs(prompt ids) -> [log P(ids[t] | ids[:t]) for t >= 1]` and
    `top(prompt ids) -> {token: log P(token | ids)}` (the next token's top alternatives)."""

    kwargs: dict = field(default_factory=dict)
    reply: Any = None
    logprobs: Any = None
    top: Any = None
    calls: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None):
        self.calls.append(dict(prompts=prompts, params=sampling_params, use_tqdm=use_tqdm, lora_request=lora_request))
        self.events.append("generate")
        outputs = []
        for i, prompt in enumerate(prompts):
            ids = prompt["prompt_token_ids"]
            prompt_logprobs = None
            if sampling_params.prompt_logprobs is not None:
                values = self.logprobs(ids)
                prompt_logprobs = [None] + [{ids[t]: Logprob(values[t - 1])} for t in range(1, len(ids))]
            sample_logprobs = None
            if sampling_params.logprobs is not None:
                alternatives = self.top(ids)
                assert len(alternatives) <= sampling_params.logprobs
                sample_logprobs = [{tok: Logprob(lp) for tok, lp in alternatives.items()}]
            completions = []
            for k in reversed(range(sampling_params.n)):  # out of order: the engine must sort by index
                tokens, finish = self.reply(ids, k) if self.reply else ([0], "length")
                completions.append(
                    CompletionOutput(k, "vLLM's own text", tokens, -1.0, logprobs=sample_logprobs, finish_reason=finish)
                )
            outputs.append(RequestOutput(str(i), None, ids, prompt_logprobs, completions))
        return outputs

    def sleep(self, level: int = 1):
        self.events.append(("sleep", level))

    def wake_up(self, tags=None):
        self.events.append("wake_up")


@pytest.fixture
def fake_vllm(monkeypatch):
    """A fake `vllm` package in sys.modules; `.built` lists the LLMs constructed through it."""
    vllm = types.ModuleType("vllm")
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    vllm.built = []

    def LLM(**kwargs):
        llm = FakeLLM(kwargs=kwargs)
        vllm.built.append(llm)
        return llm

    vllm.LLM, vllm.SamplingParams = LLM, FakeSamplingParams
    request.LoRARequest = FakeLoRARequest
    vllm.lora, lora.request = lora, request
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    return vllm


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def test_generate_maps_sampling_params_and_keeps_sample_order(fake_vllm, tokenizer):
    def reply(ids, k):  # sample k answers "k" for prompt [n tokens]; even samples end on EOS, odd ones at the limit
        tokens = encode(tokenizer, f"{len(ids)} {k}")
        return (tokens + [tokenizer.eos_token_id], "stop") if k % 2 == 0 else (tokens, "length")

    llm = FakeLLM(reply=reply)
    engine = VLLMEngine(llm, tokenizer)
    prompts = [engine.render(USER), engine.render(LONGER)]
    out = engine.generate(prompts, SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=17, seed=5))

    (call,) = llm.calls
    assert call["prompts"] == [{"prompt_token_ids": encode(tokenizer, p)} for p in prompts]
    params = call["params"]
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.seed) == (3, 0.7, 0.9, 17, 5)
    assert call["lora_request"] is None and call["use_tqdm"] is False
    lengths = [len(encode(tokenizer, p)) for p in prompts]
    assert [[c.text for c in row] for row in out] == [[f"{n} {k}" for k in range(3)] for n in lengths]
    # The stop token is neither decoded nor counted; a sample cut at the limit keeps all its tokens.
    counts = [[len(encode(tokenizer, f"{n} {k}")) for k in range(3)] for n in lengths]
    assert [[c.num_tokens for c in row] for row in out] == counts


def test_greedy_asks_for_one_sample_at_temperature_zero(fake_vllm, tokenizer):
    llm = FakeLLM(reply=lambda ids, k: (encode(tokenizer, "4"), "length"))
    engine = VLLMEngine(llm, tokenizer)
    greedy = SamplingParams(n=4, temperature=0.0, top_p=0.9, max_new_tokens=8, seed=3)
    out = engine.generate([engine.render(USER)], greedy)
    params = llm.calls[0]["params"]
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.seed) == (1, 0.0, 1.0, 8, 3)
    assert [c.text for c in out[0]] == ["4"] * 4


def test_load_checkpoint_switches_the_lora_request(fake_vllm, tokenizer, tmp_path):
    adapters = []
    for it in (1, 2):
        folder = tmp_path / "checkpoints" / f"iter-{it}"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
        adapters.append(folder)
    llm = FakeLLM(logprobs=lambda ids: [-1.0] * (len(ids) - 1), top=lambda ids: {287: -1.0})
    engine = VLLMEngine(llm, tokenizer)
    assert isinstance(engine, ServesCheckpoints)
    prompt = engine.render(USER)
    seen = []
    for it, folder in ((1, adapters[0]), (2, adapters[1]), (1, adapters[0])):  # the last: a rollback to iteration 1
        engine.load_checkpoint(folder, it)
        engine.generate([prompt], SamplingParams(n=1))
        engine.continuation_logprobs([prompt], ["7"])
        first, second = llm.calls[-2]["lora_request"], llm.calls[-1]["lora_request"]
        assert first is second  # generation and scoring use the same adapter
        seen.append((first.lora_name, first.lora_int_id, first.lora_path))
    # A fresh id every time: vLLM caches adapters by id, so a reused id would serve stale weights.
    one, two = str(adapters[0].resolve()), str(adapters[1].resolve())
    assert seen == [("iter-1", 1, one), ("iter-2", 2, two), ("iter-1", 3, one)]


def test_full_checkpoint_rebuilds_the_llm(fake_vllm, tokenizer, tmp_path):
    (tmp_path / "config.json").write_text("{}")  # full weights: no adapter_config.json
    built = []
    engine = VLLMEngine(FakeLLM(), tokenizer, rebuild=lambda path: built.append(path) or FakeLLM(), base="base-dir")
    engine.load_checkpoint(tmp_path, 1)
    assert built == [str(tmp_path.resolve())] and engine.lora_request is None
    engine.generate([engine.render(USER)], SamplingParams(n=1))
    assert len(engine.llm.calls) == 1  # the new LLM serves
    engine.serve_base()  # a rollback to iteration 0
    engine.serve_base()  # already there: no second rebuild
    assert built == [str(tmp_path.resolve()), "base-dir"]
    with pytest.raises(AutodidactError, match="cannot rebuild"):
        VLLMEngine(FakeLLM(), tokenizer).load_checkpoint(tmp_path, 1)


def test_serve_base_drops_the_adapter(fake_vllm, tokenizer, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    llm = FakeLLM()
    engine = VLLMEngine(llm, tokenizer)
    engine.load_checkpoint(tmp_path, 1)
    engine.serve_base()
    engine.generate([engine.render(USER)], SamplingParams(n=1))
    assert llm.calls[-1]["lora_request"] is None


def test_continuation_logprobs_sum_exactly_the_continuation_tokens(fake_vllm, tokenizer):
    position = lambda ids: [-t / 100 for t in range(1, len(ids))]  # noqa: E731  log P(token t | tokens < t) = -t/100
    prompt = VLLMEngine(FakeLLM(), tokenizer).render(USER) + "Score: "
    # The trailing space joins the continuation (" 7", " 100"), as in TransformersEngine.
    head = encode(tokenizer, prompt.rstrip())
    assert len(head) == 16
    assert encode(tokenizer, prompt + "7")[16:] == [287] and encode(tokenizer, prompt + "100")[16:] == [351, 18]
    # " 7" is token 16: -0.16; " 100" is tokens 16 and 17: -0.16 - 0.17.
    expected = [[pytest.approx(-0.16), pytest.approx(-0.33)]]

    # Every last token among the next-token alternatives: one request per appended part, () and (351,).
    everything = FakeLLM(logprobs=position, top=lambda ids: {tok: -len(ids) / 100 for tok in (287, 351, 18)})
    assert VLLMEngine(everything, tokenizer).continuation_logprobs([prompt], ["7", "100"]) == expected
    (call,) = everything.calls
    assert call["prompts"] == [{"prompt_token_ids": head}, {"prompt_token_ids": head + [351]}]
    params = call["params"]
    assert (params.prompt_logprobs, params.logprobs, params.max_tokens, params.temperature) == (0, 20, 1, 1.0)

    # Token 18 ("0" after " 1") outside the alternatives: " 100" is scored again with it as a prompt token.
    without = FakeLLM(logprobs=position, top=lambda ids: {287: -len(ids) / 100, 351: -len(ids) / 100})
    assert VLLMEngine(without, tokenizer).continuation_logprobs([prompt], ["7", "100"]) == expected
    assert [c["prompts"] for c in without.calls] == [
        [{"prompt_token_ids": head}, {"prompt_token_ids": head + [351]}],
        [{"prompt_token_ids": head + [351, 18]}],
    ]
    assert VLLMEngine(without, tokenizer).continuation_logprobs([], ["7"]) == []


def test_continuation_logprobs_match_the_transformers_engine(fake_vllm, tokenizer):
    """The fake computes prompt log-probabilities with a real (tiny) model: both engines must agree."""
    model = build_model("llama", len(tokenizer), tokenizer).eval()

    engine = VLLMEngine(FakeLLM(), tokenizer)
    prompts = [engine.render(USER) + "Score: ", engine.render(LONGER) + "Score: "]
    continuations = [str(i) for i in range(11)] + ["100"]
    # The alternatives a random model ranks first rarely hold a digit: the fake offers the even
    # digits' tokens (" 0", " 2", ...) as alternatives, so both ways of scoring run.
    offered = {encode(tokenizer, prompts[0] + str(i))[-1] for i in (0, 2, 4, 6, 8)}

    @functools.cache
    @torch.no_grad()
    def log_softmax(ids: tuple[int, ...]) -> torch.Tensor:
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)  # (T, V)

    def logprobs(ids):
        return log_softmax(tuple(ids))[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist()

    def top(ids):
        return {tok: log_softmax(tuple(ids))[-1, tok].item() for tok in offered}

    reference = TransformersEngine(model, tokenizer, score_batch_size=2)
    llm = FakeLLM(logprobs=logprobs, top=top)
    engine = VLLMEngine(llm, tokenizer)
    got = engine.continuation_logprobs(prompts, continuations)
    expected = reference.continuation_logprobs(prompts, continuations)
    assert len(got) == 2 and all(len(row) == 12 for row in got)
    # Both paths ran: some last tokens were among the top 20 alternatives, the others were scored again.
    _, again = llm.calls
    assert len(again["prompts"]) == 2 * (12 - 5)
    for row, ref in zip(got, expected, strict=True):
        assert row == pytest.approx(ref, abs=1e-4)
        assert all(math.isfinite(x) and x < 0 for x in row)


def test_sleep_and_wake(fake_vllm, tokenizer):
    llm = FakeLLM()
    engine = VLLMEngine(llm, tokenizer)
    engine.sleep()
    engine.sleep()  # idempotent
    engine.wake()
    engine.wake()
    engine.sleep()
    engine.generate([engine.render(USER)], SamplingParams(n=1))  # a request wakes the engine first
    assert llm.events == [("sleep", 1), "wake_up", ("sleep", 1), "wake_up", "generate"]
    off = FakeLLM()
    engine = VLLMEngine(off, tokenizer, sleep_during_training=False)
    engine.sleep()
    engine.wake()
    assert off.events == []


def test_from_config_builds_the_llm(fake_vllm, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    (tmp_path / "config.json").write_text("{}")
    settings = {"gpu_memory_utilization": 0.4, "max_model_len": 2048, "max_lora_rank": 32, "enforce_eager": True}
    config = validate_config({"seed": 7, "model": {"name": str(tmp_path), "engine": "vllm", "vllm": settings}})
    engine = VLLMEngine.from_config(config, tokenizer)
    (llm,) = fake_vllm.built
    assert engine.llm is llm and engine.tokenizer is tokenizer and engine.base == str(tmp_path)
    assert llm.kwargs == dict(
        model=str(tmp_path), dtype="bfloat16", seed=7, gpu_memory_utilization=0.4, tensor_parallel_size=1,
        max_model_len=2048,
        enforce_eager=True, enable_sleep_mode=True, enable_prefix_caching=False,
        enable_lora=True, max_lora_rank=32, max_loras=1,
    )  # fmt: skip
    full = validate_config({"model": {"name": str(tmp_path), "engine": "vllm"}, "training": {"finetune": "full"}})
    VLLMEngine.from_config(full, tokenizer)
    assert "enable_lora" not in fake_vllm.built[-1].kwargs
    small = validate_config({"model": {"name": str(tmp_path), "engine": "vllm", "vllm": {"max_lora_rank": 8}}})
    with pytest.raises(AutodidactError, match=r"max_lora_rank \(8\) is below training.lora_r \(16\)"):
        VLLMEngine.from_config(small, tokenizer)


def test_missing_vllm_or_gpu_is_a_one_line_error(tokenizer, tmp_path, monkeypatch, fake_vllm):
    (tmp_path / "config.json").write_text("{}")
    config = validate_config({"model": {"name": str(tmp_path), "engine": "vllm"}})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AutodidactError) as no_gpu:  # vLLM importable, no GPU
        VLLMEngine.from_config(config, tokenizer)
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(AutodidactError) as no_vllm:
        VLLMEngine.from_config(config, tokenizer)
    with pytest.raises(AutodidactError):
        VLLMEngine(FakeLLM(), tokenizer)
    assert str(no_gpu.value) == str(no_vllm.value) == MISSING
    assert MISSING == (
        "model.engine 'vllm' needs vLLM and a GPU: pip install 'autodidact[vllm]' on a CUDA machine, "
        "or use model.engine=transformers"
    )
    assert "\n" not in MISSING
