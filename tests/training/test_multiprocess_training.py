"""Training in 2 CPU processes (DDP over gloo, through `accelerate launch`) equals training in one.

One process with batch 8 and two processes with batch 4 each take the same
optimizer steps on the same examples, so they must end at the same weights:

- Data order. accelerate shuffles with one seeded sampler on every process
  (the trainer's seed; the same permutation whatever the number of
  processes) and deals its batches of 4 out in turn: step k is batches 2k
  (rank 0) and 2k+1 (rank 1), that is examples perm[8k:8k+8], exactly the
  batch the single process takes at step k. 16 examples make whole global
  batches (a partial last one would be padded with repeats on the ranks).
  Two epochs: the second reshuffles (seed + epoch) on both sides alike.
- Loss scale. DDP averages the ranks' gradients. With a per-rank token mean,
  that is the global token mean only if both ranks hold as many loss tokens;
  transformers' `average_tokens_across_devices` (on by default, checked
  below) divides every rank's token sum by the tokens of all ranks instead,
  so the SFT examples here have responses of different lengths on purpose.
  DPO's loss is a mean over pairs and every rank holds 4.

Tolerance. What is left is float32 rounding: the gradient is summed in
another order (two half-batch sums all-reduced by gloo, not one sum), and
Adam divides each update by sqrt(v) + 1e-8, which magnifies those last bits
for weights whose gradient is near zero. Measured (2-core CPU): max |diff|
3e-7 (LoRA SFT), 3e-6 (full SFT, LoRA DPO), with a learning rate of 1e-2.
ATOL = 2e-5 is 0.2% of one step of that learning rate; a batch that differs by
one example, or a batch order that differs, moves the weights by ~1e-2
(6.7e-2 measured by training with another shuffle seed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from autodidact.config import RunConfig
from autodidact.errors import AutodidactError
from autodidact.models import load_model
from autodidact.records import PreferencePair, SFTExample
from autodidact.training import multiprocess, prepare_policy, train_dpo, train_sft
from autodidact.training.multiprocess import train_multiprocess

ATOL = 2e-5
LEARNING_RATE = 1e-2
WORDS = "what is the answer score rate response user assistant grader final plus minus times number".split()
SEED = 3

# Responses of 3 to 7 tokens: the ranks' batches hold different numbers of loss tokens (see the docstring).
EXAMPLES = [
    SFTExample(
        f"s{i}",
        f"p{i}",
        [{"role": "user", "content": f"Say {WORDS[i % 15]} {WORDS[(3 * i + 1) % 15]}."}],
        f"{WORDS[(3 * i + 1) % 15]} {WORDS[i % 15]}." + " more" * (i % 5),
        9.0,
    )
    for i in range(16)
]
PAIRS = [
    PreferencePair(
        f"p{i}",
        [{"role": "user", "content": f"Say {WORDS[i % 15]}."}],
        f"{WORDS[i % 15]} {WORDS[i % 15]}." + " more" * (i % 3),
        f"{WORDS[(i + 4) % 15]}.",
        f"c{i}",
        f"r{i}",
        9.0,
        2.0,
    )
    for i in range(16)
]


def _config(model_dir: str, **training) -> RunConfig:
    return RunConfig(
        model={"name": model_dir, "dtype": "float32", "device": "cpu"},
        training={"lora_r": 4, "lora_alpha": 8, "learning_rate": LEARNING_RATE, "batch_size": 8, **training},
    )


def _policy(config: RunConfig):
    model, tokenizer = load_model(config.model.name, "float32", "cpu")
    return prepare_policy(model, config.training, seed=0), tokenizer  # the same seeded LoRA init on both sides


def _trainable(policy) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}


def _one_vs_two_processes(config: RunConfig, data, train_in_process, tmp_path: Path):
    """(single-process result and weights, two-process result and weights, initial weights, seconds each)."""
    one, tokenizer = _policy(config)
    initial = _trainable(one)
    start = time.perf_counter()
    one_result = train_in_process(one, tokenizer, data, config.training, SEED)
    one_seconds = time.perf_counter() - start

    two, tokenizer = _policy(config)
    split = config.training.model_copy(update={"batch_size": 4, "num_processes": 2})  # same global batch, 8
    start = time.perf_counter()
    two_result = train_multiprocess(config, two, tokenizer, data, split, SEED, tmp_path)
    two_seconds = time.perf_counter() - start
    print(f"\n1 process {one_seconds:.1f}s, 2 processes {two_seconds:.1f}s (start-up included)")
    return one_result, _trainable(one), two_result, _trainable(two), initial


def _assert_same_training(one_result, one, two_result, two, initial, tmp_path):
    assert two_result.steps == one_result.steps and two_result.examples == one_result.examples
    assert two_result.tokens == one_result.tokens
    assert two_result.loss == pytest.approx(one_result.loss, rel=1e-5)
    assert two.keys() == one.keys() and len(one) > 0
    diff = max((two[n] - one[n]).abs().max().item() for n in one)
    moved = max((one[n] - initial[n]).abs().max().item() for n in one)
    print(f"max |weight difference| {diff:.2e}, max |change in training| {moved:.2e}")
    assert diff <= ATOL
    assert moved > 100 * ATOL  # training moved the weights far beyond the tolerance: the match means something
    assert list(tmp_path.iterdir()) == []  # the job folder is gone


def test_token_mean_is_global_by_default():
    """The premise of the SFT cases below: each rank's loss is divided by the tokens of all ranks."""
    from dataclasses import fields

    from trl import DPOConfig, SFTConfig

    for config_class in (SFTConfig, DPOConfig):  # `trainer_arguments` leaves the default as it is
        (field,) = [f for f in fields(config_class) if f.name == "average_tokens_across_devices"]
        assert field.default is True


def test_lora_sft_in_two_processes_matches_one(tiny_llama, tmp_path):
    config = _config(tiny_llama, epochs=2)
    *runs, initial = _one_vs_two_processes(config, EXAMPLES, train_sft, tmp_path)
    _assert_same_training(*runs, initial, tmp_path)
    assert runs[0].steps == 4


def test_full_finetune_sft_in_two_processes_matches_one(tiny_llama, tmp_path):
    config = _config(tiny_llama, finetune="full")
    *runs, initial = _one_vs_two_processes(config, EXAMPLES, train_sft, tmp_path)
    _assert_same_training(*runs, initial, tmp_path)
    assert not any("lora_" in n for n in initial) and runs[0].steps == 2  # every weight of the model trained


def test_lora_dpo_in_two_processes_matches_one(tiny_llama, tmp_path):
    config = _config(tiny_llama, method="dpo")
    *runs, initial = _one_vs_two_processes(config, PAIRS, train_dpo, tmp_path)
    _assert_same_training(*runs, initial, tmp_path)


def _no_launch(*args, **kwargs):
    raise AssertionError("nothing may be launched")


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "is not a file"),
        ("distributed_type: NOT_A_KIND\n", "not a valid accelerate config"),
        ("distributed_type: MULTI_GPU\nnot_a_key: 1\n", "not a valid accelerate config"),
        ("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 3\n", "needs GPUs"),
        ("distributed_type: 'NO'\n", "single process"),
    ],
)
def test_unusable_accelerate_config_fails_before_anything_is_written(
    tiny_llama, tmp_path, monkeypatch, content, expected
):
    path = tmp_path / "accelerate.yaml"
    if content is not None:
        path.write_text(content)
    config = _config(tiny_llama, num_processes=2, accelerate_config=str(path))
    policy, tokenizer = _policy(config)
    monkeypatch.setattr(multiprocess.subprocess, "Popen", _no_launch)
    run_dir = tmp_path / "run"
    with pytest.raises(AutodidactError, match=expected) as error:
        train_multiprocess(config, policy, tokenizer, EXAMPLES, config.training, SEED, run_dir)
    assert "\n" not in str(error.value) and "training.accelerate_config" in str(error.value)
    assert not run_dir.exists() or list(run_dir.iterdir()) == []


def _fake_launcher(monkeypatch, script: str) -> None:
    """Replace `accelerate launch` by a Python one-liner; the job folder comes as its last argument."""
    import sys

    monkeypatch.setattr(multiprocess, "launch_command", lambda training, device: ([sys.executable, "-c", script], {}))


def test_crashed_worker_is_one_line_with_its_error_and_the_fix(tiny_llama, tmp_path, monkeypatch, capfd):
    script = (
        "import sys\n"
        "print('Traceback (most recent call last):', file=sys.stderr)\n"
        "print('RuntimeError: gloo connection refused', file=sys.stderr)\n"
        "print('[W] launcher: process 1 exited', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    _fake_launcher(monkeypatch, script)
    config = _config(tiny_llama, num_processes=2)
    policy, tokenizer = _policy(config)
    before = _trainable(policy)
    with pytest.raises(AutodidactError) as error:
        train_multiprocess(config, policy, tokenizer, EXAMPLES, config.training, SEED, tmp_path)
    message = str(error.value)
    assert "\n" not in message and "RuntimeError: gloo connection refused" in message
    assert "training.num_processes=1" in message  # the fix
    assert "RuntimeError: gloo connection refused" in capfd.readouterr().err  # streamed as it came
    assert list(tmp_path.iterdir()) == []
    assert all(torch.equal(before[n], p) for n, p in _trainable(policy).items())  # the policy is untouched


def test_worker_error_the_user_can_fix_is_passed_on_as_it_is(tiny_llama, tmp_path, monkeypatch):
    error = {"rank": 0, "kind": "AutodidactError", "message": "raise training.max_length above 40."}
    script = (
        "import json, pathlib, sys\n"
        f"pathlib.Path(sys.argv[-1], 'error-0.json').write_text({json.dumps(json.dumps(error))})\n"
        "sys.exit(2)\n"
    )
    _fake_launcher(monkeypatch, script)
    config = _config(tiny_llama, num_processes=2)
    policy, tokenizer = _policy(config)
    with pytest.raises(AutodidactError, match=r"^raise training.max_length above 40\.$"):
        train_multiprocess(config, policy, tokenizer, EXAMPLES, config.training, SEED, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cpu_launch_runs_ddp_over_gloo_without_oversubscribing(monkeypatch):
    from autodidact.config import TrainingConfig

    monkeypatch.setattr(multiprocess, "_cpu_count", lambda: 16)
    command, env = multiprocess.launch_command(TrainingConfig(num_processes=2), "cpu")
    # `--cpu` would start a single process; the torchrun launcher with ACCELERATE_USE_CPU runs gloo DDP.
    assert "--multi_gpu" in command and "--cpu" not in command
    assert command[command.index("--num_processes") + 1] == "2"
    assert command[-2:] == ["-m", multiprocess.WORKER_MODULE]
    assert env["ACCELERATE_USE_CPU"] == "true" and env["OMP_NUM_THREADS"] == "8"


def test_grpo_is_refused(tiny_llama, tmp_path):
    # By the config, before anything loads; and by train_multiprocess itself for a config built around it.
    from autodidact.config import validate_config

    with pytest.raises(AutodidactError, match="training.num_processes=1"):
        validate_config({"training": {"method": "grpo", "num_processes": 2}})
    config = _config(tiny_llama, num_processes=2)
    training = config.training.model_construct(**(config.training.model_dump() | {"method": "grpo"}))
    with pytest.raises(AutodidactError, match="training.num_processes=1"):
        train_multiprocess(config, None, None, EXAMPLES, training, SEED, tmp_path)


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "configs" / "accelerate").glob("*.yaml"))


def test_shipped_accelerate_configs_found():
    assert [p.name for p in SHIPPED] == ["ddp.yaml", "deepspeed_zero3.yaml", "fsdp.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_accelerate_config_loads_for_gpus_and_is_marked_not_run(path: Path, monkeypatch):
    """accelerate's loader accepts it, and so do our checks for a GPU policy (GPUs faked: none here)."""
    assert "NOT RUN" in path.read_text(encoding="utf-8")[:400]
    assert "docs/DISTRIBUTED.md" in path.read_text(encoding="utf-8")
    monkeypatch.setattr(multiprocess, "_check_gpus", lambda n: None)
    cluster = multiprocess.read_accelerate_config(str(path), "cuda", 4)
    assert cluster.num_machines == 1 and cluster.mixed_precision == "no"
    command, env = multiprocess.launch_command(
        RunConfig(training={"num_processes": 4, "accelerate_config": str(path)}).training, "cuda"
    )
    assert command[command.index("--num_processes") + 1] == "4" and "ACCELERATE_USE_CPU" not in env


def test_a_run_trains_in_two_processes(tiny_llama, tmp_path):
    """The loop with `training.num_processes: 2`: the workers' weights come back into the policy and its checkpoint."""
    from tests.loop.test_loop import tiny_config

    import autodidact
    from autodidact.loop import STORE_FILE
    from autodidact.store import RunStore
    from autodidact.training import init_adapters, load_policy

    config = tiny_config(tiny_llama, tmp_path, max_iterations=1)
    config["training"] |= {"num_processes": 2, "batch_size": 2}
    result = autodidact.run(config)
    assert result.stop_reason == "reached max_iterations=1"
    run_dir = tmp_path / "run"
    with RunStore(run_dir / STORE_FILE) as store:
        info = store.stage_info(1, "train")
    assert info["examples"] == 6  # top-1 of each prompt: 3 per task, 2 tasks
    assert not list(run_dir.glob(".multiprocess-train-*"))  # the job folder is gone
    # The checkpoint holds trained weights: not the adapter the run started from.
    from safetensors.torch import load_file

    trained = load_file(run_dir / "checkpoints" / "iter-1" / "adapter_model.safetensors")
    start, _ = load_policy(RunConfig.model_validate(config), None)
    init_adapters(start, 0)
    initial = {k: v for k, v in start.state_dict().items() if "lora_B" in k}
    assert initial and all(v.abs().max() == 0 for v in initial.values())  # LoRA B starts at zero
    assert max(v.abs().max().item() for k, v in trained.items() if "lora_B" in k) > 0
