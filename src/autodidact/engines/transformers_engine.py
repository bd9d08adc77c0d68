"""In-process engine on a transformers model (CPU or CUDA).

The engine holds a reference to the live model object, so after the trainer
updates the weights (LoRA or full) the next `generate` call uses them with no
reload from disk.

A LoRA policy runs inference through a merged copy (on CPU by default): the
adapters' extra matmuls, casts and adds around all 210 adapted linears of
the bundled model cost more than the merged matmuls themselves at decoding
batch sizes. The copy is rebuilt whenever an adapter weight changed (a
fingerprint of their values tells), so training is never missed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from autodidact.engines.base import Completion, ResponseCertainty, SamplingParams
from autodidact.engines.certainty import measure_certainty, response_ids
from autodidact.engines.decoding import DecodeOptions, NucleusSampler, decode, plan_batches
from autodidact.engines.scoring import ScoreOptions, continuation_ids, plan_score_batches, score_batch
from autodidact.progress import progress_bar
from autodidact.records import Message


class TransformersEngine:
    """Batched generation and scoring with a transformers causal LM.

    Args:
        model: a causal LM (optionally wrapped by PEFT).
        tokenizer: its tokenizer, with a chat template.
        batch_size: sequences decoded together (prompts x n); more is faster
            on CPU up to the memory cap in `DecodeOptions`.
        score_batch_size: prompts per forward pass in `continuation_logprobs`.
        merge_adapters: run a LoRA policy through a merged copy ("auto": on
            CPU, where it pays; the copy costs one model's memory).
    """

    supports_logprobs = True

    def __init__(self, model, tokenizer, batch_size: int = 256, score_batch_size: int = 16, merge_adapters="auto"):
        self.model = model
        self.tokenizer = tokenizer
        is_lora = hasattr(model, "merge_and_unload") and any("lora_" in n for n, _ in model.named_parameters())
        self.merge_adapters = is_lora and (merge_adapters is True or (merge_adapters == "auto" and self.device.type == "cpu"))
        self._merged, self._merged_key = None, None
        self.decode_options = DecodeOptions(max_sequences=batch_size)
        self.score_batch_size = score_batch_size
        self.score_options = ScoreOptions()  # see engines.scoring: shared prefixes run once
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.stop_token_ids = sorted(i for i in eos if i is not None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _adapter_key(self) -> tuple:
        """A fingerprint of the adapter weights (sum and sum of squares per matrix: ~10 ms on the bundled model).

        Optimizers update parameters in place with fused kernels that do not
        always bump a tensor's version counter, so the values are read.
        """
        sums = [torch.stack([p.float().sum(), p.float().square().sum()]) for n, p in self.model.named_parameters() if "lora_" in n]
        return tuple(torch.stack(sums).flatten().tolist())

    def sleep(self) -> None:
        """Free the merged copy of a LoRA policy while the trainer runs (`engines.Sleeps`).

        Training changes the adapters, so the copy would be rebuilt at the next request anyway; freeing it
        first keeps one model's memory (558 MB for the bundled model in fp32) out of the trainer's peak.
        """
        self._merged, self._merged_key = None, None

    def inference_model(self):
        """The model that generates and scores: the live model, or its merged copy for a LoRA policy."""
        if not self.merge_adapters:
            self.model.eval()
            return self.model
        key = self._adapter_key()
        if key != self._merged_key:
            self._merged = None  # free the stale copy before building the new one
            merged = copy.deepcopy(self.model).merge_and_unload()
            merged.eval().requires_grad_(False)
            self._merged, self._merged_key = merged, key
        return self._merged

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        # Rendered chat templates already carry their own BOS/special tokens.
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone (`engines.CountsTokens`)."""
        return len(self._encode(text))

    def response_certainty(
        self, prompts: Sequence[str], responses: Sequence[str], desc: str = "measuring certainty"
    ) -> list[ResponseCertainty]:
        """Per response, teacher-forced after its rendered prompt: its self-certainty (`engines.certainty`)."""
        rows = [response_ids(self._encode, p, r) for p, r in zip(prompts, responses)]
        return measure_certainty(self.inference_model(), rows, self.tokenizer.pad_token_id, self.score_batch_size, desc)

    # --- generation ----------------------------------------------------------

    def generation_batches(self, prompts: Sequence[str], params: SamplingParams) -> list[list[int]]:
        """Prompt indices per decoding batch, in the order `generate` runs them.

        A shard of the request that keeps these batches whole and passes them
        back (`generate(..., batches=)`) gets exactly the samples the whole
        request gets here: same rows, same padding, same per-sample seeds.
        """
        lengths = [len(self._encode(p)) for p in prompts]
        # self.model, not the merged copy: the plan needs only the config and dtype, both shared.
        return plan_batches(lengths, params.n, params.max_new_tokens, self.model, self.decode_options)

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        desc: str = "generating",
        batches: Sequence[Sequence[int]] | None = None,
    ) -> list[list[Completion]]:
        """`params.n` samples per prompt; see `engines.decoding` for how the batch is run.

        A sample depends only on (seed, prompt, sample index): identical
        prompts in one call get identical samples. `batches` (indices into
        `prompts`) replaces the engine's own plan; see `generation_batches`.
        """
        model = self.inference_model()
        encoded = [self._encode(p) for p in prompts]
        sampler = NucleusSampler(params.temperature, params.top_p)
        with progress_bar(desc, total=len(prompts) * params.n, unit="samples") as advance:
            tokens = decode(
                model,
                encoded,
                params.n,
                sampler,
                seed=params.seed,
                max_new_tokens=params.max_new_tokens,
                stop_ids=self.stop_token_ids,
                pad_id=self.tokenizer.pad_token_id,
                options=self.decode_options,
                on_progress=advance,
                batches=batches,
            )
        return [[self._completion(t) for t in per_prompt] for per_prompt in tokens]

    def _completion(self, tokens: list[int]) -> Completion:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Completion(text=text.strip(), num_tokens=len(tokens))

    # --- scoring -------------------------------------------------------------

    def _continuation_ids(self, prompt: str, continuations: Sequence[str]) -> tuple[int, list[list[int]]]:
        """Characters to strip from every prompt, and each continuation's ids after it (`scoring.continuation_ids`)."""
        return continuation_ids(self._encode, prompt, continuations)

    def _scoring_inputs(
        self, prompts: Sequence[str], continuations: Sequence[str], reference: str | None
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Prompt ids and continuation ids, split as `reference` (default: the first prompt) splits them."""
        strip, cont_ids = self._continuation_ids(prompts[0] if reference is None else reference, continuations)
        return [self._encode(p[: len(p) - strip] if strip else p) for p in prompts], cont_ids

    def scoring_batches(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[int]]:
        """Prompt indices per batch of `continuation_logprobs` (`scoring.plan_score_batches`).

        As with `generation_batches`, a shard that keeps these whole scores exactly as the whole request.
        """
        if not prompts:
            return []
        return self._score_plan(self._scoring_inputs(prompts, continuations, None)[0])

    def _score_plan(self, encoded: Sequence[list[int]]) -> list[list[int]]:
        return plan_score_batches(encoded, self.score_batch_size, self.score_options)

    @torch.inference_mode()
    def continuation_logprobs(
        self,
        prompts: Sequence[str],
        continuations: Sequence[str],
        desc: str = "scoring",
        batches: Sequence[Sequence[int]] | None = None,
        reference: str | None = None,
    ) -> list[list[float]]:
        """log P(continuation | prompt), teacher-forced, for every pair; see `engines.scoring` for how.

        A shard of a larger request passes that request's `batches` (see
        `scoring_batches`, re-indexed into `prompts`) and its first prompt as
        `reference`, which fixes how continuations are tokenized after a prompt.
        """
        if not prompts:
            return []
        model = self.inference_model()
        encoded, cont_ids = self._scoring_inputs(prompts, continuations, reference)
        if batches is None:
            batches = self._score_plan(encoded)
        elif sorted(i for b in batches for i in b) != list(range(len(prompts))):
            raise ValueError("batches must hold every prompt index exactly once")
        pad, options = self.tokenizer.pad_token_id, self.score_options
        results: list[list[float]] = [[] for _ in prompts]
        with progress_bar(desc, total=len(prompts), unit="prompts") as advance:
            for chunk in batches:
                rows = score_batch(model, [encoded[i] for i in chunk], cont_ids, pad, options, self.score_batch_size)
                for i, row in zip(chunk, rows):
                    results[i] = row
                advance(len(chunk))
        return results
