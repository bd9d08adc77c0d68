"""GGUF export: the merged weights written back in the bundled GGUF's layout, proven faithful.

The proof: transformers loads the written file back into exactly the merged model's logits, and
llama.cpp (where `llama_cpp` imports) reads the same tokenizer and metadata as the source file and
computes the same logits up to float rounding, with the same greedy continuation. The trained
adapter is random and non-zero on q/k/v/o and the MLP, so a wrong q/k permutation cannot pass.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from autodidact.apps.export import export_run
from autodidact.config import to_yaml, validate_config
from autodidact.errors import AutodidactError
from autodidact.models import bundled_gguf
from autodidact.models.gguf_export import _permute, source_gguf, write_gguf
from autodidact.store import RunStore
from llama_server import one_torch_thread  # noqa: F401  (autouse: one torch thread in this module)

try:
    import llama_cpp
except ImportError:  # pragma: no cover - depends on the installed extras
    llama_cpp = None

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory):
    """A run directory whose iteration 1 is a random non-zero LoRA on the bundled model, and that policy."""
    from peft import LoraConfig, get_peft_model

    from autodidact.models import load_model

    run_dir = tmp_path_factory.mktemp("run")
    config = validate_config({"name": "g", "output_dir": str(run_dir.parent), "model": {"name": "default"}})
    base, tokenizer = load_model("default", "float32", "cpu")
    torch.manual_seed(0)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=modules, init_lora_weights=False))
    checkpoint = run_dir / "checkpoints" / "iter-1"
    policy.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.add_checkpoint(1, str(checkpoint))
    return run_dir, policy.eval(), tokenizer  # the adapter unmerged: an independent reference


@pytest.mark.integration
def test_exported_gguf_loads_back_into_the_merged_model(adapter_run, tmp_path):
    from transformers import AutoModelForCausalLM

    run_dir, policy, tokenizer = adapter_run
    out = export_run(run_dir, tmp_path / "exported", iteration="1", dtype="float32", out_format="gguf")
    assert {p.name for p in out.iterdir()} == {"model.gguf", "README.md", "autodidact_export.json"}
    provenance = json.loads((out / "autodidact_export.json").read_text())
    assert (provenance["format"], provenance["dtype"], provenance["kind"]) == ("gguf", "float32", "merged")

    prompt = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    back = AutoModelForCausalLM.from_pretrained(str(out), gguf_file="model.gguf", dtype=torch.float32).eval()
    with torch.no_grad():
        expected = policy(ids).logits[0]
        assert (back(ids).logits[0] - expected).abs().max() < 1e-3  # merged vs W + BA unmerged: 1e-5 seen
        greedy = policy.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)

    if llama_cpp is None:
        pytest.skip("llama_cpp is not importable; the llama.cpp half of the check needs llama-cpp-python")
    # A float32 KV cache: llama.cpp's default float16 cache alone moves logits by ~0.1 over 30 layers.
    llm = llama_cpp.Llama(str(out / "model.gguf"), n_ctx=256, n_threads=2, logits_all=True, verbose=False,
                          type_k=0, type_v=0)
    source = llama_cpp.Llama(str(bundled_gguf()), vocab_only=True, verbose=False)
    assert {k: v for k, v in llm.metadata.items() if k != "general.file_type"} == {
        k: v for k, v in source.metadata.items() if k != "general.file_type"}
    assert llm.metadata["general.file_type"] == "0"  # ALL_F32
    assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids[0].tolist()
    llm.eval(ids[0].tolist())
    computed = np.array(llm.scores[: ids.shape[1]])
    assert np.abs(computed - expected.numpy()).max() < 1e-2  # 3e-4 seen (logits up to ~40)
    tokens = _greedy(llm, ids[0].tolist(), 8)
    assert tokens == greedy[0, ids.shape[1]:].tolist()
    llm.close()
    source.close()


def _greedy(llm, prompt: list[int], n: int) -> list[int]:
    llm.reset()
    out = []
    for token in llm.generate(prompt, temp=0.0, top_k=1):
        out.append(token)
        if len(out) == n:
            break
    return out


def test_permutation_is_the_inverse_of_transformers_gguf_reader():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    processor = LlamaTensorProcessor(config={"num_attention_heads": 9, "num_key_value_heads": 3})
    rng = np.random.default_rng(0)
    for name, rows, heads in (("blk.0.attn_q.weight", 576, 9), ("blk.0.attn_k.weight", 192, 3)):
        weights = rng.standard_normal((rows, 576)).astype(np.float32)
        permuted = _permute(weights, heads)
        assert not np.array_equal(permuted, weights)
        assert np.array_equal(processor.process(weights=permuted, name=name).weights, weights)


def _tiny_source(path, state: dict, heads: tuple[int, int]) -> None:
    """A llama GGUF holding `state`'s tensor names and shapes (zeros), one extra `rope_freqs`, a name."""
    import gguf

    from autodidact.models.gguf_export import _tensor_names

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("tiny")
    writer.add_uint32("llama.attention.head_count", heads[0])
    writer.add_uint32("llama.attention.head_count_kv", heads[1])
    for gguf_name, name in _tensor_names("llama", 2, state).items():
        writer.add_tensor(gguf_name, np.zeros(tuple(state[name].shape), dtype=np.float32))
    writer.add_tensor("rope_freqs.weight", np.arange(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_every_dtype_reads_back_through_the_gguf_reader(tiny_llama, tmp_path, dtype):
    import gguf
    from transformers import AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from autodidact.models.gguf_export import _tensor_names

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)  # 2 layers, 4 heads, 2 key/value heads, untied head
    state = model.state_dict()
    _tiny_source(tmp_path / "source.gguf", state, (4, 2))
    write_gguf(model, tmp_path / "source.gguf", tmp_path / "out.gguf", dtype)

    reader = gguf.GGUFReader(tmp_path / "out.gguf")
    assert reader.get_field("general.name").contents() == "tiny"
    file_types = {"float32": gguf.LlamaFileType.ALL_F32, "float16": gguf.LlamaFileType.MOSTLY_F16,
                  "bfloat16": gguf.LlamaFileType.MOSTLY_BF16}
    assert reader.get_field("general.file_type").contents() == file_types[dtype]
    names = _tensor_names("llama", 2, state)
    processor = LlamaTensorProcessor(config={"num_attention_heads": 4, "num_key_value_heads": 2})
    qtype = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[dtype]
    checked = 0
    for tensor in reader.tensors:
        weights = gguf.dequantize(tensor.data, tensor.tensor_type).reshape(tuple(reversed(tensor.shape.tolist())))
        if tensor.name == "rope_freqs.weight":  # not a trained weight: copied as it was
            assert np.array_equal(weights, np.arange(4, dtype=np.float32))
            continue
        expected = state[names[tensor.name]]
        assert tensor.tensor_type.name == (qtype if expected.ndim > 1 else "F32")  # norms stay float32
        rounded = expected.to(getattr(torch, dtype) if expected.ndim > 1 else torch.float32).float().numpy()
        assert np.array_equal(processor.process(weights=weights, name=tensor.name).weights, rounded), tensor.name
        checked += 1
    assert checked == len(state) == 2 * 9 + 3  # every weight of the model, none twice


def _tiny_gguf(path, arch: str, heads: int) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_uint32(f"{arch}.attention.head_count", heads)
    writer.add_uint32(f"{arch}.attention.head_count_kv", 2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()


def test_what_cannot_be_written_faithfully_raises(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)  # 4 heads, 2 key/value heads
    _tiny_gguf(tmp_path / "gemma.gguf", "gemma", 4)
    with pytest.raises(AutodidactError, match="architecture 'gemma'; only llama can be written back faithfully"):
        write_gguf(model, tmp_path / "gemma.gguf", tmp_path / "out.gguf")
    _tiny_gguf(tmp_path / "other.gguf", "llama", 9)
    with pytest.raises(AutodidactError, match="has 9 attention heads .* it is not this model's source file"):
        write_gguf(model, tmp_path / "other.gguf", tmp_path / "out.gguf")
    with pytest.raises(AutodidactError, match="dtype 'int8'"):
        write_gguf(model, tmp_path / "other.gguf", tmp_path / "out.gguf", dtype="int8")
    assert not (tmp_path / "out.gguf").exists() and not list(tmp_path.glob(".out.gguf*"))
    with pytest.raises(AutodidactError, match="needs a base model loaded from a GGUF file.*convert_hf_to_gguf"):
        source_gguf(tiny_llama)
    assert source_gguf("default") == bundled_gguf()


def test_export_format_errors_before_any_work(tmp_path, tiny_llama):
    with pytest.raises(AutodidactError, match="--format 'onnx': choose one of hf, gguf"):
        export_run(tmp_path / "nowhere", tmp_path / "out", out_format="onnx")
    with pytest.raises(AutodidactError, match="drop --adapter-only"):
        export_run(tmp_path / "nowhere", tmp_path / "out", adapter_only=True, out_format="gguf")
    # A run on a Hugging Face base: refused before the merge, with the way out.
    run_dir = tmp_path / "run"
    checkpoint = run_dir / "checkpoints" / "iter-1"
    checkpoint.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(validate_config({"model": {"name": tiny_llama}})))
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.add_checkpoint(1, str(checkpoint))
    proc = subprocess.run(
        [sys.executable, "-m", "autodidact.apps.cli", "export", str(run_dir), str(tmp_path / "out"), "--iteration", "1",
         "--format", "gguf"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "convert_hf_to_gguf.py" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
