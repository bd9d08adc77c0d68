"""What a user would run instead of AutoDidact, timed on the same requests.

- `naive_generate`: transformers `generate` once per prompt with
  `num_return_sequences=n`, as the original AutoDidact and self-rewarding
  scripts do;
- `llama_cpp_generate`: llama.cpp (llama-cpp-python) on the same GGUF file,
  one request at a time, as a user calls it;
- `grpo_completions_per_minute`: TRL's `GRPOTrainer` with the same model,
  LoRA settings, prompts, samples, token limit and model judge as reward.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence

import torch


def naive_generate(model, tokenizer, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int):
    """Tokens generated and seconds: one `generate` call per prompt."""
    stop = tokenizer.eos_token_id
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for text in prompts:
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            out = model.generate(
                **ids,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=None,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=stop,
            )
            new = out[:, ids.input_ids.shape[1] :]
            for row in new:
                ended = (row == stop).nonzero()
                tokens += int(ended[0, 0]) if len(ended) else len(row)
    return tokens, time.perf_counter() - start


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
