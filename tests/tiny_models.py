"""Tiny random models of several families, built from configs, with a tokenizer trained here.

Nothing is downloaded: the tokenizer is a byte-level BPE trained in
milliseconds on a small corpus, with a ChatML chat template; the models are
random-weight configs a few hundred KB in size. The fixtures in
tests/conftest.py use these builders; tests and benchmarks import them from
here (`from tiny_models import ...`), never from a conftest, whose module
name several folders share.
"""

from __future__ import annotations

import torch

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    words = "what is the answer score rate response user assistant grader final plus minus times number".split()
    lines = [f"What is {a} + {b}? Answer with just the number. {a + b}" for a in range(0, 100, 7) for b in range(0, 100, 11)]
    lines += [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    lines += ["Score: 0 1 2 3 4 5 6 7 8 9 10", "Final score: 7", "<<<RESPONSE>>> <<<END RESPONSE>>>"]
    return lines


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|pad|>"
    )
    fast.chat_template = CHATML
    return fast


def build_model(family: str, vocab_size: int, tokenizer):
    from transformers import AutoModelForCausalLM, GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config_cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config, "gemma": GemmaConfig}[family]
    extra = {"head_dim": 8} if family == "gemma" else {}
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config_cls(**common, **extra), dtype=torch.float32)


FAMILIES = ("llama", "mistral", "qwen2", "gemma")
