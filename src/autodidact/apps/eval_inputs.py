"""What `autodidact eval` measures and with which model: the held-out set, and MODEL or OTHER loaded.

The held-out set (`HeldoutSet`) is, by what the command names:

- a run directory as MODEL (and no --config or --source): the held-out prompts
  stored in its run.sqlite, graded by the tasks of its config.yaml;
- `--config CONFIG`: the held-out prompts a run with that config makes (its
  seed, `tasks.heldout_size` and the split of every source), refused as that
  run would be when a task holds out fewer than `tasks.min_heldout`;
- `--source FILE`: every row of one prompt file, read as a `file` source with
  the defaults (columns `prompt` and `reference`; `--verifier`, default `exact`);
- else the built-in tasks (`--task`), `--heldout-size` prompts each for `--seed`.

Its config also gives the settings a run would use (answer length, dtype,
device, batch sizes, the held-out judge); the options override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autodidact.apps.export import is_run_dir, open_run, pick_checkpoint
from autodidact.config import RunConfig, load_config, validate_config
from autodidact.engines import Engine
from autodidact.errors import AutodidactError
from autodidact.loop.context import source_embedder
from autodidact.loop.prompts import check_heldout_size
from autodidact.models import load_model, resolve_model
from autodidact.models.merge import load_adapter
from autodidact.records import Prompt
from autodidact.tasks import TASKS, Task, build_tasks
from autodidact.tasks.base import Restores
from autodidact.training.policy import policy_from

ITERATION_WORDS = ("best", "last", "base")


@dataclass
class HeldoutSet:
    """The prompts every evaluated model answers, the config whose settings apply, and what they are."""

    config: RunConfig
    describe: str  # for the table's title: "the held-out prompts of run runs/x", ...
    stored: list[Prompt] | None = None  # a run's prompts (held-out ones, and every one a task restores from)
    names: list[str] | None = None  # --task: only these tasks
    whole_file: bool = False  # --source: every row, not the held-out share
    refuse_small: bool = False  # --config: refused like the run when a task holds out < tasks.min_heldout
    built: list[Prompt] | None = None  # every prompt the tasks built, once (a later model's tasks restore from it)

    def tasks(self, engine: Engine | None, judge_engine: Engine | None) -> dict[str, Task]:
        """The tasks that grade the answers (and, for a config's documents source, write the questions).

        Without an engine (None) they can build prompts from files and built-in pools, not answer or judge.
        """
        t = self.config.tasks
        tasks = build_tasks(t, engine, source_embedder(self.config), judge_engine)
        known = self.stored if self.stored is not None else self.built
        if known is not None:  # a documents task rebuilds its search index from the prompts, never rewrites them
            for name, task in tasks.items():
                if isinstance(task, Restores):
                    task.restore([p for p in known if p.task == name], seed=self.config.seed)
        if self.names:
            unknown = [n for n in self.names if n not in tasks]
            if unknown:
                raise AutodidactError(
                    f"--task: unknown task '{unknown[0]}' in {self.describe}; choose one of: {', '.join(tasks)}."
                )
            tasks = {n: tasks[n] for n in self.names}
        return tasks

    def prompts(self, tasks: dict[str, Task]) -> list[Prompt]:
        """The held-out prompts of `tasks`, in task order (built once; every model answers these)."""
        if self.stored is not None:
            chosen = [p for p in self.stored if p.split == "heldout" and p.task in tasks]
            if not chosen:
                raise AutodidactError(
                    f"{self.describe} has no held-out prompts (it stopped before storing them); continue it with "
                    "`autodidact resume`, or use --config CONFIG to evaluate on the prompts a config makes."
                )
            return chosen
        if self.built is None:
            t, self.built = self.config.tasks, []
            for name, task in tasks.items():
                train, heldout = task.build(t.train_size, t.heldout_size, seed=self.config.seed)
                if self.refuse_small:
                    check_heldout_size(t, name, train, heldout)
                self.built += train + heldout
        chosen = [p for p in self.built if p.task in tasks and (self.whole_file or p.split == "heldout")]
        if not chosen:  # tasks.min_heldout=0 lets a run train unmeasured; an evaluation has nothing to do then
            raise AutodidactError(
                f"{self.describe}: no held-out prompt to evaluate; raise tasks.heldout_size or a source's "
                "heldout_ratio (with --set)."
            )
        return chosen


def run_set(run_dir: str, names: list[str]) -> HeldoutSet:
    """A run directory's own held-out prompts, graded by the tasks of its saved config."""
    config, store = open_run(Path(run_dir).expanduser())
    with store:
        stored = store.prompts()
    return HeldoutSet(config, f"run {run_dir}", stored=stored, names=names or None)


def config_set(path: Path, overrides: list[str], names: list[str], seed: int | None, size: int | None) -> HeldoutSet:
    """The held-out prompts a run with this config (and these --set overrides) makes."""
    extra = [f"seed={seed}"] * (seed is not None) + [f"tasks.heldout_size={size}"] * (size is not None)
    config = load_config(path, [*overrides, *extra])
    return HeldoutSet(config, f"the held-out prompts of {path}", names=names or None, refuse_small=True)


def source_set(path: Path, names: list[str], verifier: str = "exact") -> HeldoutSet:
    """Every row of one prompt file, as a `file` source with the defaults (and `verifier` for its references)."""
    if not path.exists():
        raise AutodidactError(f"--source '{path}': no such file; check the path.")
    # A task name is letters, digits, '-' and '_' (it prefixes prompt ids): the file's name, made so.
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_") or "source"
    source = {"type": "file", "name": name, "path": str(path), "heldout_ratio": 0.0, "verifier": verifier}
    config = validate_config({"tasks": {"names": [], "sources": [source], "min_heldout": 0}})
    return HeldoutSet(config, f"every row of {path}", names=names or None, whole_file=True)


def builtin_set(names: list[str], seed: int | None, size: int | None) -> HeldoutSet:
    """The built-in tasks' held-out prompts for a seed and size."""
    for name in names:
        if name not in TASKS:
            raise AutodidactError(f"--task: unknown task '{name}'; choose one of: {', '.join(TASKS)}.")
    tasks = {"names": names or list(TASKS), "heldout_size": size or 48, "min_heldout": 0}
    config = validate_config({"seed": seed or 0, "tasks": tasks})
    return HeldoutSet(config, "the built-in tasks' held-out prompts")


@dataclass(frozen=True)
class Target:
    """One model to evaluate: a spec, or a run's iteration (checkpoint None: its base model)."""

    label: str
    spec: str  # what load_model reads, or the run's base model
    field: str  # the option or argument that named it, for errors
    run_config: RunConfig | None = None  # set for a run's iteration: its model and training settings
    checkpoint: Path | None = None
    iteration: int | None = None  # the run's iteration (0: its base model)


def target(spec: str, iteration: str | None, field: str) -> Target:
    """MODEL or OTHER as a `Target`: a run directory at `iteration` (default best), or a model spec."""
    if not is_run_dir(spec):
        if iteration is not None:
            raise AutodidactError(
                f"--iteration {iteration}: {field} '{spec}' is not a run directory (config.yaml and run.sqlite); "
                "remove --iteration, or give a run directory."
            )
        _resolve(spec, field)  # a missing path fails now, not after another model was evaluated
        return Target(spec, spec, field)
    return run_target(spec, iteration or "best", field)


def run_target(run_dir: str, iteration: str, field: str) -> Target:
    """A run's iteration: 'best', 'last', 'base' (iteration 0) or a number."""
    word = iteration.strip().lower()
    if word not in ITERATION_WORDS and not word.isdigit():
        raise AutodidactError(
            f"--iteration '{iteration}': use 'best', 'last', 'base' or an iteration number (0 is the base model)."
        )
    path = Path(run_dir).expanduser()
    config, store = open_run(path)
    with store:
        best = store.get_meta("best_iteration")
        if word in ("base", "0") or (word == "best" and best == "0"):
            why = "the base model" if word != "best" else "best: the base model"
            return Target(f"{run_dir} iteration 0 ({why})", config.model.name, field, config, iteration=0)
        if word in ("best", "last") and store.last_checkpoint() is None:
            raise AutodidactError(
                f"{run_dir}: the run has no trained checkpoint yet; use --iteration base to evaluate its base model."
            )
        number, checkpoint = pick_checkpoint(path, store, word)
    note = f" ({word})" if word in ("best", "last") else ""
    return Target(f"{run_dir} iteration {number}{note}", config.model.name, field, config, checkpoint, number)


def load_target(target: Target, dtype: str, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a target, in eval mode: a run's iteration as that run loaded it, else the spec."""
    if target.run_config is not None:
        c = target.run_config
        checkpoint = str(target.checkpoint) if target.checkpoint is not None else None
        # As the run built its policy (fresh adapters drawn from its seed for iteration 0, the LoRA adapter on
        # its base otherwise), so the answers are the ones the run's own evaluation gave.
        model, tokenizer = policy_from(c.model.name, checkpoint, c.training, dtype, device, seed=c.seed)
    elif (Path(target.spec).expanduser() / "adapter_config.json").is_file():  # a LoRA checkpoint: adapter on its base
        model, tokenizer = load_adapter(Path(target.spec).expanduser(), None, dtype, device, target.field)
    else:
        model, tokenizer = load_model(target.spec, dtype, device, field=target.field)
    model.eval()
    return model, tokenizer


def _resolve(spec: str, field: str) -> None:
    """Check that a model spec resolves (a LoRA checkpoint folder is loaded on its base later)."""
    if not (Path(spec).expanduser() / "adapter_config.json").is_file():
        resolve_model(spec, field)
