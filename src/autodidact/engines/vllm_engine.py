"""In-process vLLM engine for the policy on a GPU (`model.engine: vllm`, the `vllm` extra).

Written against vLLM's offline API (`vllm.LLM`, v0.11 and later, V1 engine):
`LLM.generate(prompts, SamplingParams, lora_request=...)`, prompt
log-probabilities, LoRA adapters by `LoRARequest`, and sleep mode. Never run
on a GPU here: tests/test_vllm_engine.py checks the request/response mapping
against a fake `vllm` module.

Same semantics as `TransformersEngine`:
- prompts are tokenized here (`add_special_tokens=False`, as the rendered chat
  template carries its own) and sent as token ids, so vLLM sees exactly the
  tokens the in-process engine would;
- completions are decoded here with `skip_special_tokens=True`, stripped, and
  counted without the stop token;
- `continuation_logprobs` is log P(continuation | prompt), teacher-forced, with
  the same tokenization boundary (`TransformersEngine._continuation_ids`), read
  from vLLM's prompt log-probabilities and next-token alternatives (exact: a
  token outside the alternatives is re-scored as a prompt token).

Weights. LoRA: the base model stays loaded and each checkpoint is served by a
`LoRARequest` with a fresh integer id (vLLM caches adapters by id, so reusing
one would serve the old weights). Full fine-tuning: vLLM cannot swap a whole
model in place through its public API, so the `LLM` is rebuilt from the
checkpoint folder (a cold start: loading, and CUDA graph capture unless
`enforce_eager`). `sleep()` / `wake()` free the GPU memory for the trainer
(level 1: weights to CPU memory, KV cache dropped).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodidact.engines.base import Completion, SamplingParams
from autodidact.engines.transformers_engine import TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.models import pick_dtype, resolve_model
from autodidact.progress import progress_bar
from autodidact.records import Message

if TYPE_CHECKING:
    from autodidact.config import RunConfig

MISSING = (
    "model.engine 'vllm' needs vLLM and a GPU: pip install 'autodidact[vllm]' on a CUDA machine, "
    "or use model.engine=transformers"
)
REQUESTS_PER_SCORING_CALL = 1024  # bounds the prompt log-probabilities held in Python (one dict per prompt token)
TOP_LOGPROBS = 20  # next-token alternatives read per scoring request: vLLM's default `max_logprobs`


def _import_vllm() -> Any:
    try:
        import vllm
        import vllm.lora.request  # noqa: F401  (LoRARequest lives there)
    except ImportError:
        raise AutodidactError(MISSING) from None
    return vllm


class VLLMEngine:
    """The Engine and ServesCheckpoints protocols over a `vllm.LLM`.

    Args:
        llm: a `vllm.LLM` (tests pass a fake with the same methods).
        tokenizer: the policy's tokenizer, with its chat template.
        rebuild: builds a new `LLM` from a model folder, for full fine-tuning checkpoints.
        base: the folder (or hub id) `llm` was built from, for `serve_base` after full fine-tuning.
        sleep_during_training: whether `sleep()` really puts vLLM to sleep
            (the `LLM` must have been built with `enable_sleep_mode=True`).
    """

    supports_logprobs = True
    # The in-process engine's tokenization boundary, shared so both score the same tokens.
    _continuation_ids = TransformersEngine._continuation_ids

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        *,
        rebuild: Callable[[str], Any] | None = None,
        base: str | None = None,
        sleep_during_training: bool = True,
    ):
        vllm = _import_vllm()
        self.llm = llm
        self.tokenizer = tokenizer
        self.rebuild = rebuild
        self.base = base
        self.rebuilt = False  # serving a full fine-tuning checkpoint, not `base`
        self.sleep_during_training = sleep_during_training
        self.sleeping = False
        self.lora_request: Any = None  # None: the weights the LLM was built with
        self._SamplingParams = vllm.SamplingParams
        self._LoRARequest = vllm.lora.request.LoRARequest
        self._next_lora_id = 1

    @classmethod
    def from_config(cls, config: RunConfig, tokenizer: Any) -> VLLMEngine:
        """Start vLLM on `config.model.name` with the settings in `config.model.vllm`.

        Raises:
            AutodidactError: vLLM or a GPU is missing, the settings do not fit, or vLLM fails to start.
        """
        import torch

        vllm = _import_vllm()
        if not torch.cuda.is_available():
            raise AutodidactError(MISSING)
        v, lora = config.model.vllm, config.training.finetune == "lora"
        if lora and config.training.lora_r > v.max_lora_rank:
            raise AutodidactError(
                f"model.vllm.max_lora_rank ({v.max_lora_rank}) is below training.lora_r "
                f"({config.training.lora_r}); raise it"
            )
        dtype = str(pick_dtype(config.model.dtype, torch.device("cuda"))).removeprefix("torch.")

        def build(model: str) -> Any:
            kwargs: dict[str, Any] = dict(
                model=model,
                dtype=dtype,
                seed=config.seed,
                gpu_memory_utilization=v.gpu_memory_utilization,
                tensor_parallel_size=v.tensor_parallel_size,
                max_model_len=v.max_model_len,
                enforce_eager=v.enforce_eager,
                enable_sleep_mode=v.sleep_during_training,
                # Prompt log-probabilities with prefix caching on have depended on request order
                # (vllm-project/vllm#42019); requests that ask for them bypass the cache anyway.
                enable_prefix_caching=False,
            )
            if lora:
                kwargs.update(enable_lora=True, max_lora_rank=v.max_lora_rank, max_loras=1)
            try:
                return vllm.LLM(**kwargs)
            except Exception as exc:  # vLLM raises many types (OOM, unsupported model, bad rank)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise AutodidactError(
                    f"model.engine 'vllm': vLLM could not start on '{model}': {first}; lower "
                    "model.vllm.gpu_memory_utilization or max_model_len, or use model.engine=transformers"
                ) from None

        base = resolve_model(config.model.name)
        return cls(build(base), tokenizer, rebuild=build, base=base, sleep_during_training=v.sleep_during_training)

    # --- weights and memory --------------------------------------------------

    def load_checkpoint(self, checkpoint: Path, iteration: int) -> None:
        """Serve `checkpoint`: a PEFT adapter folder by LoRARequest, full weights by rebuilding the LLM."""
        checkpoint = Path(checkpoint)
        if (checkpoint / "adapter_config.json").is_file():
            self.lora_request = self._LoRARequest(f"iter-{iteration}", self._next_lora_id, str(checkpoint.resolve()))
            self._next_lora_id += 1
            return
        self._rebuild(str(checkpoint.resolve()))
        self.rebuilt = True

    def serve_base(self) -> None:
        """Serve the base weights again (after a rollback to iteration 0)."""
        self.lora_request = None
        if self.rebuilt:
            self._rebuild(self.base)
            self.rebuilt = False

    def _rebuild(self, model: str | None) -> None:
        if self.rebuild is None or model is None:
            raise AutodidactError(f"this VLLMEngine cannot rebuild its LLM to serve '{model}' (no rebuild function)")
        self.llm = None  # release the old engine (and its GPU memory) before the new one starts
        gc.collect()
        self.llm = self.rebuild(model)
        self.lora_request, self.sleeping = None, False

    def sleep(self) -> None:
        """Free vLLM's GPU memory while the trainer runs (weights to CPU memory, KV cache dropped)."""
        if self.sleep_during_training and not self.sleeping:
            self.llm.sleep(level=1)
            self.sleeping = True

    def wake(self) -> None:
        """Bring the weights back and reallocate the KV cache; requests also wake the engine."""
        if self.sleeping:
            self.llm.wake_up()
            self.sleeping = False

    # --- requests ------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        # Rendered chat templates already carry their own BOS/special tokens.
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _run(self, token_prompts: list[list[int]], params: Any) -> list[Any]:
        """One `LLM.generate` call; its outputs come back in request order."""
        self.wake()
        requests = [{"prompt_token_ids": ids} for ids in token_prompts]  # a vllm.inputs.TokensPrompt
        return self.llm.generate(requests, params, use_tqdm=False, lora_request=self.lora_request)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating"
    ) -> list[list[Completion]]:
        """`params.n` samples per prompt, in prompt order; sample k of a request is seeded with `seed + k`."""
        if not prompts:
            return []
        greedy = params.temperature <= 0  # as NucleusSampler
        request = self._SamplingParams(
            n=1 if greedy else params.n,  # vLLM refuses n > 1 with greedy decoding; the n samples are equal anyway
            temperature=0.0 if greedy else params.temperature,
            top_p=1.0 if greedy else params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
        )
        with progress_bar(desc, total=len(prompts), unit="prompts") as advance:
            outputs = self._run([self._encode(p) for p in prompts], request)
            advance(len(prompts))
        results = []
        for out in outputs:
            samples = [self._completion(c) for c in sorted(out.outputs, key=lambda c: c.index)]
            results.append(samples * params.n if greedy else samples)
        return results

    def _completion(self, output: Any) -> Completion:
        tokens = list(output.token_ids)
        # Count and decode without the stop token, as TransformersEngine does; whether vLLM keeps
        # it in token_ids has varied, so it is dropped only when it is there. stop_reason is the
        # token id for a generation_config EOS beyond the tokenizer's, None for the tokenizer's.
        stopped_on = (self.tokenizer.eos_token_id, output.stop_reason)
        if tokens and output.finish_reason == "stop" and tokens[-1] in stopped_on:
            tokens.pop()
        return Completion(text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(), num_tokens=len(tokens))

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        """log P(continuation | prompt), teacher-forced, for every pair: shape (P, C).

        A continuation is split into the tokens appended to the prompt (all but
        its last) and its last token. One request per prompt and distinct
        appended part reads the appended tokens' log-probabilities (as prompt
        tokens) and the top `TOP_LOGPROBS` alternatives for the next token: one
        request serves all of "0".."9", two serve "0".."10". A last token
        outside the top alternatives is scored exactly by a second request that
        carries it as a prompt token.
        """
        if not prompts:
            return []
        strip, cont_ids = self._continuation_ids(prompts[0], continuations)
        heads = [self._encode(p[: len(p) - strip] if strip else p) for p in prompts]
        appended = sorted({tuple(ids[:-1]) for ids in cont_ids})
        per_call = max(1, REQUESTS_PER_SCORING_CALL // len(appended))
        rows: list[list[float]] = []
        with progress_bar(desc, total=len(prompts), unit="prompts") as advance:
            for start in range(0, len(heads), per_call):
                rows += self._score_chunk(heads[start : start + per_call], cont_ids, appended)
                advance(min(per_call, len(heads) - start))
        return rows

    def _score_chunk(
        self, heads: list[list[int]], cont_ids: list[list[int]], appended: list[tuple[int, ...]]
    ) -> list[list[float]]:
        # temperature 1: some versions applied it to returned log-probabilities; the one generated token is ignored.
        params = self._SamplingParams(
            max_tokens=1, temperature=1.0, prompt_logprobs=0, logprobs=TOP_LOGPROBS, detokenize=False
        )

        def prompt_sum(output: Any, start: int, tokens: Sequence[int]) -> float:
            # prompt_logprobs[t]: {token id at t: Logprob} for log P(token t | tokens < t); [0] is None.
            return sum(output.prompt_logprobs[start + j][tok].logprob for j, tok in enumerate(tokens))

        outputs = iter(self._run([head + list(extra) for head in heads for extra in appended], params))
        seen = {}  # (prompt, appended) -> (log P(appended | prompt), {next token: log-probability})
        for i, head in enumerate(heads):
            for extra in appended:
                out = next(outputs)
                top = {tok: lp.logprob for tok, lp in out.outputs[0].logprobs[0].items()}
                seen[i, extra] = (prompt_sum(out, len(head), extra), top)
        rows: list[list[Any]] = [[None] * len(cont_ids) for _ in heads]
        missing = []
        for i in range(len(heads)):
            for c, ids in enumerate(cont_ids):
                before, top = seen[i, tuple(ids[:-1])]
                if ids[-1] in top:
                    rows[i][c] = before + top[ids[-1]]
                else:
                    missing.append((i, c))
        if missing:
            outputs = self._run([heads[i] + cont_ids[c] for i, c in missing], params)
            for (i, c), out in zip(missing, outputs, strict=True):
                rows[i][c] = prompt_sum(out, len(heads[i]), cont_ids[c])
        return rows
