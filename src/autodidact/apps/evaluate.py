"""`autodidact eval`: held-out evaluation of any model, outside a run."""

from __future__ import annotations

from pathlib import Path

from autodidact.config import judge_config as judge_section
from autodidact.engines import TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.evaluation import evaluate_heldout, heldout_judge
from autodidact.judges import build_judge
from autodidact.models import load_model
from autodidact.tasks import TASKS, get_task


def _load(model: str, dtype: str = "auto"):
    """A model spec, or a run's LoRA checkpoint (adapter on its base model)."""
    adapter = Path(model) / "adapter_config.json"
    if not adapter.is_file():
        return load_model(model, dtype=dtype)
    import json

    from peft import PeftModel

    base = json.loads(adapter.read_text())["base_model_name_or_path"]
    base_model, tokenizer = load_model(base, dtype=dtype)
    return PeftModel.from_pretrained(base_model, model), tokenizer


def evaluate_model(
    model: str, tasks: list[str] | None, heldout_size: int, seed: int, judge: str,
    max_new_tokens: int = 64, dtype: str = "auto",
) -> dict:
    """One summary row (as in a run's table) for `model` on the tasks' held-out prompts.

    To match a run's own evaluation, pass its seed, `tasks.heldout_size`, `evaluation.max_new_tokens`
    and `model.dtype`.
    """
    if heldout_size < 1:  # checked before the model loads, not after
        raise AutodidactError(f"--heldout-size must be at least 1, got {heldout_size}; give a positive number.")
    names = tasks or list(TASKS)
    task_objs = {name: get_task(name) for name in names}
    judge_config = None if judge == "none" else judge_section(method=judge)  # validates the name before loading
    policy, tokenizer = _load(model, dtype)
    engine = TransformersEngine(policy, tokenizer)
    # A relative judge (pairwise...) cannot score one answer per prompt: a direct judge does, as in a run.
    judge_obj = None
    if judge_config is not None:
        judge_obj = heldout_judge(build_judge(judge_config, engine, task_objs), judge_config, engine)
    # The same split as a run with this seed: build() returns disjoint train/held-out sets.
    prompts = [p for t in task_objs.values() for p in t.build(1, heldout_size, seed)[1]]
    result = evaluate_heldout(engine, judge_obj, task_objs, prompts, 0, max_new_tokens=max_new_tokens)
    overall = result.metrics.pop("")
    return overall | {"iteration": 0, "tasks": result.metrics}
