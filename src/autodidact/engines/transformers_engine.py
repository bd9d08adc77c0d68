"""In-process engine on a transformers model (CPU or CUDA).

The engine holds a reference to the live model object, so after the trainer
updates the weights (LoRA or full) the next `generate` call uses them with no
reload from disk.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from autodidact.engines import Completion, SamplingParams
from autodidact.progress import progress_bar
from autodidact.records import Message


class TransformersEngine:
    """Batched generation and scoring with a transformers causal LM.

    Args:
        model: a causal LM (optionally wrapped by PEFT).
        tokenizer: its tokenizer, with a chat template.
        batch_size: sequences decoded together; prompts are grouped so that
            `prompts x n` fills a batch.
        score_batch_size: prompts per forward pass in `continuation_logprobs`.
    """

    supports_logprobs = True

    def __init__(self, model, tokenizer, batch_size: int = 64, score_batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.stop_token_ids = sorted(i for i in eos if i is not None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        # Rendered chat templates already carry their own BOS/special tokens.
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _left_pad(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    # --- generation ----------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating") -> list[list[Completion]]:
        self.model.eval()
        encoded = [self._encode(p) for p in prompts]
        # Longest first: similar lengths share a batch (less padding) and the
        # memory peak shows up in the first batch rather than the last.
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        per_batch = max(1, self.batch_size // params.n)
        results: list[list[Completion]] = [[] for _ in prompts]
        batches = [order[i : i + per_batch] for i in range(0, len(order), per_batch)]
        sampling = params.temperature > 0
        with progress_bar(desc, total=len(prompts) * params.n, unit="samples") as advance:
            for b, batch in enumerate(batches):
                ids, mask = self._left_pad([encoded[i] for i in batch])
                torch.manual_seed(params.seed * 100_003 + b)  # reproducible per batch, whatever ran before
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=sampling,
                    temperature=params.temperature if sampling else None,
                    top_p=params.top_p if sampling else None,
                    top_k=None,
                    max_new_tokens=params.max_new_tokens,
                    num_return_sequences=params.n,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.stop_token_ids,
                )
                new_tokens = out[:, ids.shape[1] :].cpu()  # (len(batch) * n, T)
                for row, tokens in enumerate(new_tokens):
                    results[batch[row // params.n]].append(self._completion(tokens))
                advance(len(batch) * params.n)
        return results

    def _completion(self, tokens: torch.Tensor) -> Completion:
        ended = torch.isin(tokens, torch.tensor(self.stop_token_ids))
        length = int(ended.nonzero()[0, 0]) if ended.any() else len(tokens)
        text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
        return Completion(text=text.strip(), num_tokens=length)

    # --- scoring -------------------------------------------------------------

    def _continuation_ids(self, prompt: str, continuations: Sequence[str]) -> tuple[int, list[list[int]]]:
        """Token ids of each continuation as it is tokenized after `prompt`.

        Returns how many trailing characters to strip from every prompt and the
        ids. Tokenizers that merge a space into the next token (" 7") cannot
        split "Score: " + "7" at the space; we then move the trailing
        whitespace from the prompt into the continuation.
        """
        for strip in (0, len(prompt) - len(prompt.rstrip())):
            head = prompt[: len(prompt) - strip]
            base = self._encode(head)
            ids = []
            for cont in continuations:
                full = self._encode(prompt + cont)
                if full[: len(base)] != base or len(full) == len(base):
                    break
                ids.append(full[len(base) :])
            else:
                return strip, ids
        raise ValueError(f"cannot tokenize continuations {list(continuations)!r} after the prompt consistently")

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        """log P(continuation | prompt), teacher-forced, for every pair.

        One forward pass over the prompts gives every single-token
        continuation; each multi-token continuation (e.g. "10" split as "1",
        "0") costs one short extra step on the cached prompt.
        """
        if not prompts:
            return []
        self.model.eval()
        strip, cont_ids = self._continuation_ids(prompts[0], continuations)
        results: list[list[float]] = []
        with progress_bar(desc, total=len(prompts), unit="prompts") as advance:
            for start in range(0, len(prompts), self.score_batch_size):
                chunk = prompts[start : start + self.score_batch_size]
                rows = [self._encode(p[: len(p) - strip] if strip else p) for p in chunk]
                results.extend(self._score_chunk(rows, cont_ids))
                advance(len(chunk))
        return results

    def _score_chunk(self, rows: list[list[int]], cont_ids: list[list[int]]) -> list[list[float]]:
        ids, mask = self._left_pad(rows)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        needs_cache = any(len(c) > 1 for c in cont_ids)
        # logits_to_keep=1: only the last position's logits are needed; the full
        # (B, T, V) tensor would cost ~0.5 GB for a 49k vocabulary and gain nothing.
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=needs_cache, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
        scores = torch.zeros(len(rows), len(cont_ids))
        for c, tokens in enumerate(cont_ids):
            lp = first[:, tokens[0]]
            if len(tokens) > 1:
                rest = torch.tensor(tokens[:-1], device=self.device).expand(len(rows), -1)  # (B, m-1)
                ext_mask = torch.cat([mask, torch.ones_like(rest)], dim=1)
                ext_pos = positions[:, -1:] + torch.arange(1, rest.shape[1] + 1, device=self.device)
                step = self.model(
                    input_ids=rest,
                    attention_mask=ext_mask,
                    position_ids=ext_pos,
                    past_key_values=copy.deepcopy(out.past_key_values),
                    use_cache=True,
                )
                logp = torch.log_softmax(step.logits.float(), dim=-1)  # (B, m-1, V)
                nxt = torch.tensor(tokens[1:], device=self.device)
                lp = lp + logp.gather(-1, nxt.expand(len(rows), -1).unsqueeze(-1)).squeeze(-1).sum(-1)
            scores[:, c] = lp.cpu()
        return scores.tolist()
