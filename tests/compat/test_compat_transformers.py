"""Canaries for autodidact.compat.transformers: each fails with one line naming the workaround."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autodidact.compat import transformers as compat
from autodidact.models import load_model


def _last_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


def test_reassigned_static_cache_rows_are_the_ones_decoding_reads(tiny_llama):
    from transformers import StaticCache

    model, _ = load_model(tiny_llama, dtype="float32", device="cpu")
    prompt, first, second = [5, 9, 14, 3], [7, 11], 4
    cache = StaticCache(config=model.config, max_cache_len=len(prompt) + 2)
    with torch.no_grad():
        model(input_ids=torch.tensor([prompt]), past_key_values=cache, use_cache=True)
        compat.repeat_cache_rows(cache, 2)  # one prefill, two sequences
        position = torch.tensor([[len(prompt)], [len(prompt)]])
        step = model(input_ids=torch.tensor([[t] for t in first]), position_ids=position, past_key_values=cache,
                     use_cache=True).logits[:, -1]
        compat.select_cache_rows(cache, torch.tensor([1]))  # the first sequence finished
        last = model(input_ids=torch.tensor([[second]]), position_ids=position[:1] + 1, past_key_values=cache,
                     use_cache=True).logits[0, -1]
    want = [_last_logits(model, prompt + [t]) for t in first]
    if not all(torch.allclose(step[i], want[i], atol=1e-5) for i in range(2)):
        pytest.fail("compat.transformers.repeat_cache_rows: StaticCache no longer decodes from its reassigned "
                    "layer.keys / layer.values; revisit the workaround")
    if not torch.allclose(last, _last_logits(model, prompt + [first[1], second]), atol=1e-5):
        pytest.fail("compat.transformers.select_cache_rows: StaticCache no longer decodes from its reassigned "
                    "layer.keys / layer.values; revisit the workaround")


def test_tensorboard_callback_writes_where_its_logging_dir_points(tmp_path):
    pytest.importorskip("tensorboard")
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[object(), callback]))
    compat.point_tensorboard_at(trainer, str(tmp_path / "tracking"))
    args = SimpleNamespace(output_dir=str(tmp_path / "output"), to_json_string=lambda: "{}")
    state = SimpleNamespace(is_world_process_zero=True, is_hyper_param_search=False)
    callback.on_train_begin(args, state, None)
    written = getattr(callback.tb_writer, "log_dir", None)
    callback.on_train_end(args, state, None)
    if written != str(tmp_path / "tracking") or (tmp_path / "output").exists():
        pytest.fail("compat.transformers.point_tensorboard_at: TensorBoardCallback no longer writes where its "
                    f"logging_dir points (wrote to {written}); revisit the workaround")


def test_gguf_tensor_processors_still_undo_llamas_head_permutation():
    try:
        processors, default = compat.gguf_tensor_processors()
    except ImportError as exc:
        pytest.fail(f"compat.transformers.gguf_tensor_processors: the private module moved ({exc}); revisit it")
    heads = {"num_attention_heads": 2, "num_key_value_heads": 2}
    weights = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    if "llama" not in processors:
        pytest.fail("compat.transformers.gguf_tensor_processors: TENSOR_PROCESSORS has no 'llama'; revisit it")
    unpermuted = processors["llama"](config=heads).process(weights=weights, name="blk.0.attn_q.weight").weights
    kept = default(config=heads).process(weights=weights, name="blk.0.attn_q.weight").weights
    # llama.cpp's q permutation of each head's rows ([0, 2, 1, 3] within a head of 4 rows), undone on load
    want = weights.reshape(2, 2, 2, 4).swapaxes(1, 2).reshape(8, 4)
    if not (np.array_equal(unpermuted, want) and np.array_equal(kept, weights)):
        pytest.fail("compat.transformers.gguf_tensor_processors: the llama processor no longer un-permutes "
                    "q heads as the export assumes; revisit it")


def test_cache_argument_is_a_name_the_forward_uses(tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import DynamicCache

    model, _ = load_model(tiny_llama, dtype="float32", device="cpu")
    name = compat.cache_argument(model)
    assert name in ("cache", "past_key_values")
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=torch.tensor([[5, 9, 14]]), **{name: cache}, use_cache=True)
    if cache.get_seq_length() != 3:  # a name the forward swallows into **kwargs leaves the cache empty
        pytest.fail(f"compat.transformers.cache_argument: the forward ignored a cache passed as {name!r}")
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert compat.cache_argument(peft) == name  # read through the PEFT wrapper's **kwargs
