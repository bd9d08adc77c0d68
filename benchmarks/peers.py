"""What a user would run instead of AutoDidact, timed on the same requests.

- `naive_generate`: transformers `generate` once per prompt with
  `num_return_sequences=n`, as the original AutoDidact and self-rewarding
  scripts do;
- `batched_generate`: transformers `generate` on batches of left-padded
  prompts, `num_return_sequences=n`;
- `continuous_batching_generate`: transformers' own continuous batching
  (`model.generate_batch`, paged KV cache);
- `llama_cpp_generate`: llama.cpp (llama-cpp-python) on the same GGUF file,
  one request at a time, as a user calls it (llama.cpp's own server with
  parallel slots is in `peer_servers.py`);
- `grpo_completions_per_minute`: TRL's `GRPOTrainer` with the same model,
  LoRA settings, prompts, samples, token limit and model judge as reward.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence

import torch


def naive_generate(model, tokenizer, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int):
    """Tokens generated and seconds: one `generate` call per prompt (`batched_generate` one prompt at a time)."""
    return batched_generate(model, tokenizer, prompts, n, temperature, top_p, max_new_tokens, batch_prompts=1)


def _generated(rows: torch.Tensor, stop: int) -> int:
    """Tokens before the first `stop` in each row of (sequences, new tokens) ids, summed."""
    ended = rows == stop
    first = torch.where(ended.any(1), ended.int().argmax(1), rows.shape[1])
    return int(first.sum())


def batched_generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    batch_prompts: int = 16,
):
    """Tokens generated and seconds: `generate` on `batch_prompts` left-padded prompts at a time, n samples each."""
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_prompts):
            batch = tokenizer(
                list(prompts[i : i + batch_prompts]),
                add_special_tokens=False,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=None,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            tokens += _generated(out[:, batch.input_ids.shape[1] :], tokenizer.eos_token_id)  # (B * n, new)
    return tokens, time.perf_counter() - start


def continuous_batching_generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    page_size: int = 64,
):
    """Tokens generated and seconds: transformers' `generate_batch` (continuous batching, paged cache), n samples each.

    The cache is sized to the workload: by default transformers takes 60% of the machine's RAM on CPU.

    Raises:
        RuntimeError: a request failed or went missing (generate_batch logs failures and returns what it has).
    """
    from transformers import ContinuousBatchingConfig, GenerationConfig

    ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    per_sequence = -(-(max(map(len, ids)) + max_new_tokens) // page_size)
    generation = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,  # off, as in the engine (GenerationConfig's default is 50)
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    paged = ContinuousBatchingConfig(page_size=page_size, num_blocks=len(ids) * (n * per_sequence + 1), seed=0)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate_batch(ids, generation_config=generation, continuous_batching_config=paged)
    seconds = time.perf_counter() - start
    failed = [f"{key}: {r.error}" for key, r in out.items() if r.error is not None]
    if failed or len(out) != len(ids) * n:
        raise RuntimeError(f"generate_batch returned {len(out)} of {len(ids) * n} sequences; {'; '.join(failed[:1])}")
    stop = tokenizer.eos_token_id
    tokens = sum(len(r.generated_tokens) - (r.generated_tokens[-1:] == [stop]) for r in out.values())
    return tokens, seconds


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def llama_cpp_generate(gguf_path: str, messages: Sequence[list[dict]], n: int, temperature: float, top_p: float, max_new_tokens: int):
    """Tokens generated and seconds: llama.cpp, 2 threads, one request at a time."""
    from llama_cpp import Llama

    llm = Llama(model_path=gguf_path, n_threads=2, n_ctx=1024, verbose=False, seed=0)
    tokens = 0
    start = time.perf_counter()
    for k in range(n):
        for msgs in messages:
            out = llm.create_chat_completion(
                messages=list(msgs), max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=k
            )
            tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


def grpo_completions_per_minute(
    model,
    tokenizer,
    messages: Sequence[list[dict]],
    reward: Callable[[list[str], list[str]], list[float]],
    lora: dict,
    n: int,
    max_new_tokens: int,
    temperature: float,
) -> dict:
    """Completions generated, scored and trained on per minute by TRL's GRPOTrainer."""
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    def reward_func(prompts, completions, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        users = [p[-1]["content"] if isinstance(p, list) else p for p in prompts]
        return reward(users, texts)

    prompts_per_step = min(4, len(messages))
    with tempfile.TemporaryDirectory() as workdir:
        args = GRPOConfig(
            output_dir=workdir,
            per_device_train_batch_size=n * prompts_per_step,
            num_generations=n,
            max_steps=-(-len(messages) // prompts_per_step),  # one pass over the prompts
            max_completion_length=max_new_tokens,
            temperature=temperature,
            learning_rate=2e-4,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            bf16=next(model.parameters()).dtype == torch.bfloat16,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_func,
            args=args,
            train_dataset=Dataset.from_list([{"prompt": list(m)} for m in messages]),
            processing_class=tokenizer,
            peft_config=LoraConfig(task_type="CAUSAL_LM", **lora),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    completions = len(messages) * n
    return {"completions": completions, "seconds": seconds, "completions_per_minute": 60 * completions / seconds}


# --- the generation section's peers, side by side ---------------------------------------------


def measure(run: Callable[[], tuple[int, float]], prompts: int) -> dict:
    """One peer's row: tokens, seconds and tokens/s, or the one-line reason it could not run (never no row)."""
    try:
        tokens, seconds = run()
    except Exception as exc:  # any failure of a peer is a result to report, not a crash of the bench
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return {"prompts": prompts, "error": reason[:300]}
    return {"prompts": prompts, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def generation_peers(
    model, tokenizer, texts: Sequence[str], messages: Sequence[list[dict]], sampling: dict, subset: int
) -> dict[str, dict]:
    """Every generation peer on the same prompts: `texts` rendered, `messages` for llama.cpp's own template.

    Args:
        model: the policy's base model, plain (no adapters), in the engine's dtype.
        sampling: n, temperature, top_p, max_new_tokens.
        subset: prompts for the one-request-at-a-time peers (naive generate, llama-cpp-python), which are slow.
    """
    import peer_servers
    from autodidact.models import bundled_gguf

    s = sampling
    args = (s["n"], s["temperature"], s["top_p"], s["max_new_tokens"])
    gguf = str(bundled_gguf())
    out = {
        "naive": measure(lambda: naive_generate(model, tokenizer, texts[:subset], *args), len(texts[:subset])),
        "generate_batched": measure(lambda: batched_generate(model, tokenizer, texts, *args), len(texts)),
        "generate_batch": measure(lambda: continuous_batching_generate(model, tokenizer, texts, *args), len(texts)),
    }
    if llama_cpp_available():
        out["llama_cpp"] = measure(lambda: llama_cpp_generate(gguf, messages[:subset], *args), len(messages[:subset]))
    else:
        out["llama_cpp"] = {"prompts": 0, "error": "llama-cpp-python is not installed (make install adds it)"}
    binary, why_not = peer_servers.llama_server_binary()
    server: dict = {}

    def serve() -> tuple[int, float]:
        if binary is None:
            raise FileNotFoundError(why_not)
        server.update(peer_servers.llama_server_generate(binary, gguf, tokenizer, texts, *args))
        return server["tokens"], server["seconds"]

    row = measure(serve, len(texts))
    out["llama_server"] = {**row, **{k: v for k, v in server.items() if k not in row}}  # + slots, ctx_per_slot
    return out


PEER_ROWS = (  # key, label, target on engine / peer (None: no target)
    ("naive", "vs naive generate, one prompt at a time", 8.0),
    ("llama_cpp", "vs llama.cpp (llama-cpp-python), one request at a time", 2.5),
    ("generate_batched", "vs transformers generate, 16 prompts a batch", None),
    ("generate_batch", "vs transformers generate_batch (continuous batching)", None),
    ("llama_server", "vs llama-server, a slot per sequence, continuous batching", 1.0),
)


def generation_rows(generation: dict) -> list[tuple[str, str, str, bool | None]]:
    """(measure, value, target, met) of each peer against the engine; a peer that did not run says why."""
    engine = generation["engine"]["tokens_per_s"]
    rows = []
    for key, label, target in PEER_ROWS:
        peer = generation.get(key) or {"prompts": 0, "error": "not run"}
        if peer.get("prompts") and peer["prompts"] < generation["engine"]["prompts"]:
            label += f" (first {peer['prompts']} prompts)"
        if "error" in peer:
            rows.append((label, "did not run: " + peer["error"].replace("|", "/"), "", None))
            continue
        ratio = engine / peer["tokens_per_s"]
        goal = "" if target is None else (f"> {target:g}x" if target == 1 else f">= {target:g}x")
        ok = None if target is None else (ratio > target if target == 1 else ratio >= target)
        rows.append((label, f"{peer['tokens_per_s']:.0f} tok/s -> {ratio:.2f}x", goal, ok))
    return rows
