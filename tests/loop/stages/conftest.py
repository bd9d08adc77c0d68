"""The `stage_ctx` fixture: a RunContext on a fresh store in tmp_path, with a scripted engine and judge."""

from __future__ import annotations

import pytest
from stage_world import LengthJudge, ScriptedEngine

from autodidact.config import validate_config
from autodidact.engines import TokenCounter
from autodidact.loop.context import RunContext
from autodidact.store import RunStore


@pytest.fixture
def stage_ctx(tmp_path):
    """Build a RunContext on a fresh store: stage_ctx(scripted_judge=None, **config sections) -> RunContext."""
    stores = []

    def build(scripted_judge=None, **sections) -> RunContext:
        config = validate_config({"tasks": {"names": ["arithmetic"], "prompts_per_iteration": 2}, **sections})
        store = RunStore(tmp_path / f"run{len(stores)}.sqlite")
        stores.append(store)
        engine = ScriptedEngine()
        judge = scripted_judge or LengthJudge()
        return RunContext(
            config=config, run_dir=tmp_path, store=store, policy=None, tokenizer=None, engine=engine,
            judge_engine=TokenCounter(engine), judge=judge, heldout_judge=judge, reference_judge=None, tasks={},
        )

    yield build
    for store in stores:
        store.close()
