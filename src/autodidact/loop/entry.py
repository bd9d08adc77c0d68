"""`run` and `resume`: a run directory, its store and its context, then the runner.

Both take an optional `plan` (the stages to run; by default the one the
training method calls for, `stages.plan_for`) and `amend` (a function that
returns the built `RunContext` with a component replaced): the seams through
which a test or an extension changes one stage or one component.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from autodidact.config import RunConfig, load_config, to_yaml, validate_config
from autodidact.errors import AutodidactError, file_error
from autodidact.loop.context import RunContext, build_context
from autodidact.loop.results import CONFIG_FILE, STORE_FILE, RunResult, collect_result
from autodidact.loop.runner import Runner
from autodidact.loop.stages import StagePlan, plan_for
from autodidact.store import CHECKPOINTS, RunStore
from autodidact.tracking import require_tracker
from autodidact.training import load_policy

Amend = Callable[[RunContext], RunContext]
OTHER_OUTPUT_DIR = "choose another output_dir (--set output_dir=PATH)"


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
    check_output_dir(run_dir)
    policy = load_policy(config, None)  # before writing anything: a bad model must leave no trace
    # The topmost folder this start creates (output_dir itself may be new): a failed start removes it.
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)
    with _begin(config, run_dir, created) as store, only_writer(run_dir):
        ctx = None
        try:  # building the tasks reads the user's files: a bad one must leave no run behind either
            ctx = _context(config, run_dir, store, amend, policy)
            runner = Runner(ctx, plan or plan_for(config))
            runner.prepare()
        except (AutodidactError, OSError):
            if ctx is not None:
                ctx.close()
            store.close()
            _remove_start(run_dir, created)
            raise
        return runner.run()


def _begin(config: RunConfig, run_dir: Path, created: Path | None) -> RunStore:
    """Write config.yaml (whole or not at all) and create the store; on failure remove what was written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / (CONFIG_FILE + ".tmp")
        tmp.write_text(to_yaml(config), encoding="utf-8")
        tmp.rename(run_dir / CONFIG_FILE)
        return RunStore(run_dir / STORE_FILE)
    except (OSError, AutodidactError) as exc:  # a full disk, a folder made read-only since the check
        _remove_start(run_dir, created)
        if isinstance(exc, OSError):
            raise file_error(exc, OTHER_OUTPUT_DIR, run_dir / CONFIG_FILE) from None
        raise


def check_output_dir(run_dir: Path) -> None:
    """Refuse a run directory that cannot be created: a file in its place or a read-only folder above it."""
    existing = next(p for p in [run_dir, *run_dir.parents] if p.exists())
    if not existing.is_dir():
        raise AutodidactError(
            f"output_dir: '{existing}' is a file, not a folder, so the run directory {run_dir} cannot be made there; "
            f"{OTHER_OUTPUT_DIR}."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AutodidactError(
            f"output_dir: cannot create the run directory {run_dir}: '{existing}' is read-only; {OTHER_OUTPUT_DIR}."
        )


def _remove_start(run_dir: Path, created: Path | None) -> None:
    """Remove what a failed start wrote: the folders it created, or its files in a folder that existed."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for name in (CONFIG_FILE + ".tmp", CONFIG_FILE, STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm"):
        (run_dir / name).unlink(missing_ok=True)


def resume(run_dir: str | Path, plan: StagePlan | None = None, amend: Amend | None = None) -> RunResult:
    """Continue a run where it stopped: finished stages are not redone."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not ((run_dir / STORE_FILE).is_file() or _killed_before_store(run_dir)):
        raise AutodidactError(
            f"'{run_dir}' is not a run directory (no {CONFIG_FILE} and {STORE_FILE}). Check the path."
        )
    _check_writable(run_dir)
    # The saved config's output_dir and name say where the run began; the run is wherever `run_dir` is now.
    config = load_config(run_dir / CONFIG_FILE)
    require_tracker(config.tracking)
    with only_writer(run_dir), RunStore(run_dir / STORE_FILE) as store:
        if store.get_meta("stop_reason"):
            return collect_result(run_dir, store)
        _check_last_checkpoint(run_dir, store)
        return Runner(_context(config, run_dir, store, amend), plan or plan_for(config)).run()


@contextmanager
def only_writer(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run's store while this process runs it; refuse a second runner.

    SQLite's own locks guard one transaction, not a run: two `resume`s of one run would interleave
    their stages. flock(2) on run.sqlite is separate from SQLite's fcntl locks, and the kernel drops it
    when the process ends, however it ends (no stale lock file to clean up).
    """
    store = run_dir / STORE_FILE
    if not store.is_file():  # killed before the store was made: nothing to share yet
        yield
        return
    with store.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AutodidactError(
                f"run '{run_dir}' is in use by another autodidact process (a run or resume of it is still going); "
                "wait for that process to end, or stop it, then resume."
            ) from None
        yield


def _check_writable(run_dir: Path) -> None:
    """A resumed run writes its store and checkpoints: refuse a read-only run directory before any work."""
    places = [run_dir, run_dir / STORE_FILE, run_dir / CHECKPOINTS]
    if any(p.exists() and not os.access(p, os.W_OK) for p in places):
        raise AutodidactError(
            f"cannot write to run directory {run_dir} (read-only); copy it somewhere writable and resume the copy."
        )


def _check_last_checkpoint(run_dir: Path, store: RunStore) -> None:
    """The checkpoint a resumed run continues from must be this run's own, on disk."""
    last = store.last_checkpoint()
    if last is not None and not Path(last[1]).is_dir():
        raise AutodidactError(
            f"run '{run_dir}': checkpoint {Path(last[1]).relative_to(run_dir).as_posix()} is missing (was the run "
            "copied without it?); copy it back into the run directory, or start a new run."
        )


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
