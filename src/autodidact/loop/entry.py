"""`run` and `resume`: a run directory, its store and its context, then the runner.

Both take an optional `plan` (the stages to run; by default the one the
training method calls for, `stages.plan_for`) and `amend` (a function that
returns the built `RunContext` with a component replaced): the seams through
which a test or an extension changes one stage or one component.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from autodidact.config import RunConfig, load_config, to_yaml, validate_config
from autodidact.errors import AutodidactError
from autodidact.loop.context import RunContext, build_context
from autodidact.loop.results import CONFIG_FILE, STORE_FILE, RunResult, collect_result
from autodidact.loop.runner import Runner
from autodidact.loop.stages import StagePlan, plan_for
from autodidact.store import RunStore
from autodidact.tracking import require_tracker
from autodidact.training import load_policy

Amend = Callable[[RunContext], RunContext]


def run(config: RunConfig | dict | str | Path, plan: StagePlan | None = None, amend: Amend | None = None) -> RunResult:
    """Start a new run. `config` is a `RunConfig`, a dict, or a YAML path.

    Everything that can fail on bad input (config, model, run directory) is
    checked before anything is written.
    """
    config = load_config(config) if isinstance(config, (str, Path)) else validate_config(config)
    require_tracker(config.tracking)  # a missing tracker package fails before anything loads or is written
    if config.name is None:
        config = config.model_copy(update={"name": datetime.now().strftime("run-%Y%m%d-%H%M%S")})
    run_dir = config.run_dir()
    if (run_dir / STORE_FILE).exists() or (run_dir / CONFIG_FILE).exists():
        raise AutodidactError(
            f"run directory '{run_dir}' already holds a run. Continue it with `autodidact resume {run_dir}` "
            "or choose another name (--set name=...)."
        )
    policy = load_policy(config, None)  # before writing anything: a bad model must leave no trace
    # The topmost folder this start creates (output_dir itself may be new): a failed start removes it.
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(to_yaml(config), encoding="utf-8")
    tmp.rename(run_dir / CONFIG_FILE)
    with RunStore(run_dir / STORE_FILE) as store:
        ctx = None
        try:  # building the tasks reads the user's files: a bad one must leave no run behind either
            ctx = _context(config, run_dir, store, amend, policy)
            runner = Runner(ctx, plan or plan_for(config))
            runner.prepare()
        except AutodidactError:
            if ctx is not None:
                ctx.close()
            store.close()
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            else:
                for name in (CONFIG_FILE, STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm"):
                    (run_dir / name).unlink(missing_ok=True)
            raise
        return runner.run()


def resume(run_dir: str | Path, plan: StagePlan | None = None, amend: Amend | None = None) -> RunResult:
    """Continue a run where it stopped: finished stages are not redone."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not ((run_dir / STORE_FILE).is_file() or _killed_before_store(run_dir)):
        raise AutodidactError(
            f"'{run_dir}' is not a run directory (no {CONFIG_FILE} and {STORE_FILE}). Check the path."
        )
    config = load_config(run_dir / CONFIG_FILE)
    require_tracker(config.tracking)
    with RunStore(run_dir / STORE_FILE) as store:
        if store.get_meta("stop_reason"):
            return collect_result(run_dir, store)
        return Runner(_context(config, run_dir, store, amend), plan or plan_for(config)).run()


def _context(config: RunConfig, run_dir: Path, store: RunStore, amend: Amend | None, policy=None) -> RunContext:
    ctx = build_context(config, run_dir, store, policy)
    return amend(ctx) if amend is not None else ctx


def _killed_before_store(run_dir: Path) -> bool:
    """Whether `run()` was killed between writing config.yaml and creating run.sqlite.

    Nothing else was written then (`run` refuses the directory from now on),
    so resuming starts the run from the beginning. A directory with
    checkpoints but no store lost its store: that is not resumed.
    """
    checkpoints = run_dir / "checkpoints"
    return not (run_dir / STORE_FILE).exists() and not (checkpoints.is_dir() and any(checkpoints.iterdir()))
