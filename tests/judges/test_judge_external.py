"""External judge: a separate local model judges and is never trained; null keeps the self-judge."""

from __future__ import annotations

import pytest
import torch

from autodidact.config import validate_config
from autodidact.errors import AutodidactError
from autodidact.loop import STORE_FILE
from autodidact.loop.context import build_context
from autodidact.loop.runner import Runner
from autodidact.loop.stages import plan_for
from autodidact.store import RunStore


def config(policy_dir: str, out, **judge):
    return validate_config({
        "name": "ext",
        "output_dir": str(out),
        "model": {"name": policy_dir, "dtype": "float32", "device": "cpu"},
        "tasks": {"train_size": 6, "heldout_size": 2, "prompts_per_iteration": 3, "min_heldout": 2},
        "generation": {"samples_per_prompt": 2, "max_new_tokens": 4},
        "judge": {"batch_size": 8, **judge},
        "training": {"lora_r": 2, "lora_alpha": 4, "batch_size": 4},
        "evaluation": {"max_new_tokens": 4},
        "stopping": {"max_iterations": 1, "patience": 5},
    })


def test_separate_local_judge_model_is_used_and_never_trained(tiny_model_dirs, tmp_path):
    cfg = config(tiny_model_dirs["llama"], tmp_path, model=tiny_model_dirs["qwen2"])
    run_dir = tmp_path / "ext"
    run_dir.mkdir()
    with RunStore(run_dir / STORE_FILE) as store:
        loop = build_context(cfg, run_dir, store)
        judge_model = loop.judge.engine.model
        assert loop.judge.engine is not loop.engine
        assert type(judge_model).__name__ == "Qwen2ForCausalLM" and type(loop.policy).__name__ != "Qwen2ForCausalLM"
        assert not any(p.requires_grad for p in judge_model.parameters())
        before = {name: p.detach().clone() for name, p in judge_model.named_parameters()}
        result = Runner(loop, plan_for(cfg)).run()
        assert result.stop_reason == "reached max_iterations=1"
        assert store.counts()["checkpoints"] == 1  # the policy was trained...
        assert len([j for j in store.judgments(1, "direct") if j.score is not None]) == 12 + 2 * 2
        for name, p in judge_model.named_parameters():  # ...the judge was not
            assert torch.equal(p, before[name]), name


def test_null_judge_model_keeps_the_policy_judging_itself(tiny_llama, tmp_path):
    cfg = config(tiny_llama, tmp_path)
    (tmp_path / "ext").mkdir()
    with RunStore(tmp_path / "ext" / STORE_FILE) as store:
        loop = build_context(cfg, tmp_path / "ext", store)
        assert loop.judge.engine.engine is loop.engine  # through the TokenCounter


def test_an_ensemble_member_naming_its_own_model_runs_on_that_model_frozen(tiny_model_dirs, tmp_path):
    """One member inherits the ensemble's engine (the policy), the other loads the model it names."""
    members = [{"method": "direct"}, {"method": "direct", "model": tiny_model_dirs["qwen2"]}]
    cfg = config(tiny_model_dirs["llama"], tmp_path, method="ensemble", members=members)
    (tmp_path / "ext").mkdir()
    with RunStore(tmp_path / "ext" / STORE_FILE) as store:
        loop = build_context(cfg, tmp_path / "ext", store)
        inherited, own = (member.engine for member in loop.judge.members)
        assert inherited is loop.judge_engine and inherited.engine is loop.engine
        assert own.engine is not loop.engine and own.into is loop.judge_engine  # its tokens count as the judge's
        assert type(own.engine.model).__name__ == "Qwen2ForCausalLM" != type(loop.policy).__name__
        assert not any(p.requires_grad for p in own.engine.model.parameters())


def test_an_ensemble_member_whose_model_cannot_load_names_the_member(tiny_llama, tmp_path):
    members = [{"method": "direct"}, {"method": "direct", "model": str(tmp_path / "missing")}]
    cfg = config(tiny_llama, tmp_path, method="ensemble", members=members)
    (tmp_path / "ext").mkdir()
    with RunStore(tmp_path / "ext" / STORE_FILE) as store:
        with pytest.raises(AutodidactError, match=r"^judge\.members\[1\]: judge\.model: "):
            build_context(cfg, tmp_path / "ext", store)
