"""SIGKILL a tiny run in generate, train (mid-step and mid-checkpoint) and monitor; the resumed run is the unkilled one.

The fast version of benchmarks/crash_harness.py, whose functions it uses:
one unkilled reference run (in this process, after whatever other tests did
to torch's RNG), then one run in subprocesses killed five times (the first
run and four of its resumes) and resumed until it finishes. Every kill is
made by the child itself (SIGKILL to its own pid) at an exact point, so the
test is deterministic. Then in-process checks of the two things a resumed
process must reproduce: the LoRA initialisation and the scores of a policy
loaded from its checkpoint.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
import torch

import autodidact
import autodidact.loop
from autodidact.config import validate_config
from autodidact.engines import SamplingParams, TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.loop import CONFIG_FILE, STORE_FILE
from autodidact.loop.stages import STAGES
from autodidact.records import SFTExample
from autodidact.store import RunStore
from autodidact.training import init_adapters, load_policy, save_checkpoint, train_sft
from autodidact.training.faults import restore_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import crash_harness as harness  # noqa: E402  (benchmarks/: the harness, its kill points and its run)
from crash_points import Kill, Point  # noqa: E402
from crash_run import snapshot, tiny_run_config  # noqa: E402


def _one_iteration(model_dir: str, out) -> dict:
    config = tiny_run_config(model_dir, out, "r")
    config["stopping"]["max_iterations"] = 1
    return config


@pytest.fixture(scope="module")
def reference(tiny_llama, tmp_path_factory):
    """The unkilled run, in this process: its RNG state is not a fresh interpreter's, and must not matter."""
    work = tmp_path_factory.mktemp("crash")
    torch.rand(11)  # as if another test had drawn from the global RNG
    start = time.perf_counter()
    autodidact.run(tiny_run_config(tiny_llama, work / "runs", "reference"))
    wall = time.perf_counter() - start
    return work, {"wall_s": wall, "snapshot": snapshot(work / "runs" / "reference")}


def test_killed_and_resumed_run_equals_the_unkilled_one(tiny_llama, reference):
    work, ref = reference
    kills = [
        Kill("hook", hook="config-written"),  # config.yaml in place, no run.sqlite: resume must start the run
        # Mid-checkpoint: the adapter file half written under the temporary name. The resume trains iteration 1
        # from a fresh adapter, which must be the reference's.
        Kill("hook", hook="ckpt-torn:1"),
        # Samples inserted, COMMIT not reached. The resume loads checkpoint 1 and judges with it: it must score
        # as the reference's policy, trained in its process, did.
        Kill("hook", hook="before-commit:2:generate"),
        Kill("hook", hook="train-step:2"),  # mid-training: in the first optimizer step of iteration 2
        Kill("hook", hook="before-commit:2:monitor"),  # the last stage of the run, after its last evaluation
    ]
    point = Point(0, kills[0], then=kills[1:])

    result = harness.run_point(point, tiny_llama, work, ref, seed=0)

    attempts = result["attempts"]
    errors = [a["error"] for a in attempts if a["error"]]
    assert not errors, errors[0]
    assert [a["mode"] for a in attempts] == ["run"] + ["resume"] * 5
    assert [a["rc"] for a in attempts] == [-signal.SIGKILL] * 5 + [0]
    assert [a["landed"] for a in attempts[:5]] == ["startup", "1:train", "2:generate", "2:train", "2:monitor"]
    loads = [load for a in attempts for load in a["loads"]]
    assert loads and all(load["complete"] for load in loads)  # resumes load checkpoints, never a partial one
    # Nothing lost or duplicated, the same rows and metrics to the last bit, the same checkpoint weights.
    assert result["problems"] == [], "\n".join(result["problems"])
    assert result["rows_intact"] and result["same_rows"] and result["metrics_identical"]
    assert result["tmp_leftovers"] == []


def test_run_killed_right_after_writing_its_config_resumes(tiny_llama, tmp_path, monkeypatch):
    """config.yaml in place, no run.sqlite yet: `run` refuses the directory, so `resume` must take it."""
    rename = Path.rename

    def killed_after_config(self, target):
        moved = rename(self, target)
        if self.name == CONFIG_FILE + ".tmp":
            raise KeyboardInterrupt("simulated kill between config.yaml and run.sqlite")
        return moved

    monkeypatch.setattr(Path, "rename", killed_after_config)
    with pytest.raises(KeyboardInterrupt):
        autodidact.run(_one_iteration(tiny_llama, tmp_path))
    monkeypatch.setattr(Path, "rename", rename)
    run_dir = tmp_path / "r"
    assert (run_dir / CONFIG_FILE).is_file() and not (run_dir / STORE_FILE).exists()

    result = autodidact.resume(run_dir)

    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(run_dir / STORE_FILE) as store:
        assert all(store.stage_done(1, stage) for stage in STAGES)


def test_a_directory_that_lost_its_store_is_not_resumed(tmp_path):
    """Checkpoints but no run.sqlite: the run's record is gone, resuming would overwrite its checkpoints."""
    (tmp_path / "checkpoints" / "iter-1").mkdir(parents=True)
    (tmp_path / CONFIG_FILE).write_text("name: r\n", encoding="utf-8")
    with pytest.raises(AutodidactError, match="not a run directory"):
        autodidact.resume(tmp_path)


def test_run_killed_in_its_last_monitor_stage_runs_it_on_resume(tiny_llama, tmp_path, killed_at):
    """The last iteration's evaluation is committed, its monitor is not: the resumed run must still monitor it."""
    config = _one_iteration(tiny_llama, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        autodidact.loop.run(config, plan=killed_at(config, "monitor", 1))

    result = autodidact.resume(tmp_path / "r")

    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "r" / STORE_FILE) as store:
        assert store.stage_done(1, "monitor")
        assert {"distinct_1", "self_bleu"} <= {row["name"] for row in store.metrics(1)}


def _lora(policy, part: str = "lora_A") -> dict[str, torch.Tensor]:
    return {name: value for name, value in policy.state_dict().items() if part in name}


def test_lora_initialisation_depends_on_the_seed_only(tiny_llama, tmp_path):
    """LoRA's A matrices are random: a resumed process must draw the ones the killed process drew."""
    config = validate_config(_one_iteration(tiny_llama, tmp_path))
    first, _ = load_policy(config, None)
    torch.rand(7)  # whatever else the process did before (another run, a test) must not matter
    state = torch.random.get_rng_state()
    second, _ = load_policy(config, None)
    assert torch.equal(torch.random.get_rng_state(), state)  # and the caller's RNG is left as it was
    a, b = _lora(first), _lora(second)
    assert a and all(torch.equal(a[name], b[name]) for name in a)
    assert all(not value.any() for value in _lora(second, "lora_B").values())  # the adapter adds nothing yet

    init_adapters(second, 1)  # another seed, other matrices
    assert not any(torch.equal(a[name], value) for name, value in _lora(second).items())
    # The loop draws its run's adapter as a rollback to the base model does, so the two agree after a kill.
    seeded = _lora(second)
    restore_policy(first, config.model_copy(update={"seed": 1}), None)
    assert all(torch.equal(seeded[name], value) for name, value in _lora(first).items())


def test_a_loaded_checkpoint_scores_exactly_like_the_policy_that_was_trained(tiny_llama, tmp_path):
    """A resumed run judges with the checkpoint it loaded; the killed one judged with the policy it had trained."""
    config = validate_config(_one_iteration(tiny_llama, tmp_path))
    examples = [
        SFTExample(f"s{i}", f"p{i}", [{"role": "user", "content": f"What is {i} + 1?"}], f"The answer is {i + 1}.", 9.0)
        for i in range(4)
    ]
    prompts = [f"What is {i} + 2? Answer with just the number. Final score:" for i in range(3)]
    scores = [f" {k}" for k in range(11)]
    trained, tokenizer = load_policy(config, None)
    train_sft(trained, tokenizer, examples, config.training, seed=1)
    path = save_checkpoint(trained, tokenizer, tmp_path / "iter-1")
    loaded, _ = load_policy(config, str(path))
    # TRL's fused-LM-head forward is taken off again: the trained model is its class's, like the loaded one.
    assert not any("forward" in vars(module) for module in trained.modules())

    def judge(policy):
        engine = TransformersEngine(policy, tokenizer, score_batch_size=8)
        return engine.continuation_logprobs(prompts, scores), engine.generate(prompts, SamplingParams(n=2, seed=3))

    assert judge(trained) == judge(loaded)  # bit for bit: fp32 on the CPU
