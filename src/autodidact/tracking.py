"""Experiment tracking: per-iteration metrics, monitor values and samples to TensorBoard, W&B or MLflow.

The loop sends one record per iteration, stepped by the iteration, right after
its monitor stage commits (`iteration_payload` -> `Tracker.log_iteration`); a
resumed run does not resend finished iterations, and W&B and MLflow continue
the run whose id is saved in RUN_DIR/tracking. The trainers send their own
logs (loss, learning rate) through TrainingArguments.report_to, as the
`TrainerReport` from `Tracker.training(iteration)` says: TensorBoard one folder
per iteration (the trainer's step restarts at 0), MLflow a nested run per
iteration (the trainer logs its arguments as params, which MLflow will not
change within a run), W&B the same run.

Human-judge agreement comes later than its iteration: ratings arrive while
the run goes on, during a pause, or from `autodidact review --import`. Where
they change a checkpoint's figures (`agreement_snapshot` before,
`send_agreement` after), the new `review/human_*` values are sent stepped by
the checkpoint's iteration.
"""

from __future__ import annotations

import importlib
import math
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from autodidact.compat.transformers import point_tensorboard_at
from autodidact.errors import AutodidactError, unknown_name
from autodidact.store import RunStore

if TYPE_CHECKING:
    from autodidact.config import RunConfig

TRACKERS = ("none", "tensorboard", "wandb", "mlflow")
TRACKING_DIR = "tracking"  # under the run directory
MAX_SAMPLE_ROWS, TEXT_CHARS, PARAM_CHARS = 8, 400, 250  # MLflow rejects longer param values


@dataclass(frozen=True)
class TrainerReport:
    """Where one iteration's trainer sends its own logs."""

    report_to: str = "none"  # TrainingArguments.report_to
    run_name: str | None = None  # TrainingArguments.run_name
    log_dir: str | None = None  # TensorBoard only: transformers 5 has no TrainingArguments.logging_dir

    def arguments(self) -> dict[str, Any]:
        """The TrainingArguments fields this report sets."""
        return {"report_to": self.report_to, "run_name": self.run_name}

    def attach(self, trainer: Any) -> None:
        """Point the trainer's TensorBoard callback at `log_dir` (it would write under its temporary output_dir)."""
        if self.log_dir is None:
            return

        point_tensorboard_at(trainer, self.log_dir)


class Tracker(Protocol):
    report_to: str

    def log_iteration(
        self, iteration: int, metrics: Mapping[str, float | None], samples: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Send one iteration's metrics (None values are left out) and sample rows."""

    def training(self, iteration: int) -> AbstractContextManager[TrainerReport]:
        """Around one iteration's training: yields where the trainer reports."""

    def close(self) -> None: ...


_MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def require_tracker(kind: str) -> Any:
    """Import the module tracker `kind` needs (None for 'none'); AutodidactError naming the fix when missing."""
    if kind not in _MODULES:
        return None
    try:
        return importlib.import_module(_MODULES[kind])
    except ImportError:
        raise AutodidactError(f"tracking: {kind} is not installed; pip install {kind}, or set tracking: none") from None


def _finite(metrics: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _cell(value: Any) -> str:
    text = "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (dicts with the same keys) as a markdown table."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def _saved_id(folder: Path, name: str) -> str | None:
    path = folder / name
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


class NullTracker:
    report_to = "none"

    def log_iteration(self, iteration: int, metrics: Mapping[str, float | None], samples: Sequence = ()) -> None:
        pass

    @contextmanager
    def training(self, iteration: int) -> Iterator[TrainerReport]:
        yield TrainerReport()

    def close(self) -> None:
        pass


class TensorBoardTracker:
    report_to = "tensorboard"

    def __init__(self, tensorboard: Any, folder: Path, run_name: str, config: Mapping[str, Any]):
        self.folder, self.run_name = folder, run_name
        self._writer = tensorboard.SummaryWriter(str(folder))
        config_text = "\n".join("    " + line for line in yaml.safe_dump(dict(config), sort_keys=False).splitlines())
        self._writer.add_text("config", config_text, 0)  # indented: a markdown code block

    def log_iteration(self, iteration: int, metrics: Mapping[str, float | None], samples: Sequence = ()) -> None:
        for name, value in _finite(metrics).items():
            self._writer.add_scalar(name, value, iteration)
        if samples:
            self._writer.add_text("samples", markdown_table(samples), iteration)
        self._writer.flush()

    @contextmanager
    def training(self, iteration: int) -> Iterator[TrainerReport]:
        log_dir = self.folder / "train" / f"iter-{iteration}"
        yield TrainerReport("tensorboard", f"{self.run_name}-iter-{iteration}", str(log_dir))

    def close(self) -> None:
        self._writer.close()


class WandbTracker:
    """Logs with an `iteration` key as the x-axis, not `step=`: the trainer's own logs advance W&B's step,
    and W&B drops a log whose step is below the current one."""

    report_to = "wandb"

    def __init__(self, wandb: Any, folder: Path, run_name: str, config: Mapping[str, Any]):
        folder.mkdir(parents=True, exist_ok=True)
        run_id = _saved_id(folder, "wandb-run-id") or uuid.uuid4().hex[:16]
        (folder / "wandb-run-id").write_text(run_id, encoding="utf-8")
        self._wandb, self.run_name, self._defined = wandb, run_name, set()
        project = os.environ.get("WANDB_PROJECT", "autodidact")
        self._run = wandb.init(
            project=project, name=run_name, id=run_id, config=dict(config), dir=str(folder), resume="allow"
        )
        self._run.define_metric("iteration")

    def log_iteration(self, iteration: int, metrics: Mapping[str, float | None], samples: Sequence = ()) -> None:
        values = _finite(metrics)
        for name in sorted(values.keys() - self._defined):  # exact names: the trainer defines "*" on its step
            self._run.define_metric(name, step_metric="iteration")
        self._defined |= values.keys()
        row: dict[str, Any] = {"iteration": iteration, **values}
        if samples:
            columns = list(samples[0])
            row["samples"] = self._wandb.Table(columns=columns, data=[[s.get(c) for c in columns] for s in samples])
        self._run.log(row)

    @contextmanager
    def training(self, iteration: int) -> Iterator[TrainerReport]:
        yield TrainerReport("wandb", f"{self.run_name}-iter-{iteration}")

    def close(self) -> None:
        self._run.finish()


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)[:PARAM_CHARS]
    return out


class MLflowTracker:
    report_to = "mlflow"

    def __init__(self, mlflow: Any, folder: Path, run_name: str, config: Mapping[str, Any]):
        self._mlflow, self.run_name = mlflow, run_name
        run_id = _saved_id(folder, "mlflow-run-id")
        run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mlflow-run-id").write_text(run.info.run_id, encoding="utf-8")
        params = list(_flatten(config).items())
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(params[i : i + 100]))

    def log_iteration(self, iteration: int, metrics: Mapping[str, float | None], samples: Sequence = ()) -> None:
        self._mlflow.log_metrics(_finite(metrics), step=iteration)
        if samples:
            self._mlflow.log_text(markdown_table(samples), f"samples/iter-{iteration}.md")

    @contextmanager
    def training(self, iteration: int) -> Iterator[TrainerReport]:
        with self._mlflow.start_run(run_name=f"train-iter-{iteration}", nested=True):
            yield TrainerReport("mlflow", f"{self.run_name}-iter-{iteration}")

    def close(self) -> None:
        self._mlflow.end_run()


def make_tracker(kind: str, run_dir: Path, run_name: str, config: Mapping[str, Any]) -> Tracker:
    """The tracker `kind` (the config's `tracking`); AutodidactError when its package is missing."""
    if kind not in TRACKERS:
        raise unknown_name("tracker", kind, TRACKERS, field="tracking")
    module, folder = require_tracker(kind), Path(run_dir) / TRACKING_DIR
    if kind == "tensorboard":
        return TensorBoardTracker(module, folder, run_name, config)
    if kind == "wandb":
        return WandbTracker(module, folder, run_name, config)
    if kind == "mlflow":
        return MLflowTracker(module, folder, run_name, config)
    return NullTracker()


def run_tracker(config: RunConfig, run_dir: Path) -> Tracker:
    """The tracker a run's config names, writing under `run_dir` (W&B and MLflow continue the run's saved run)."""
    return make_tracker(config.tracking, run_dir, config.name or Path(run_dir).name, config.model_dump(mode="json"))


def _metric_name(name: str, task: str, heldout: set[str], judge: set[str]) -> str:
    if task:
        return f"heldout/{task}/{name}"
    if name in judge:
        return f"judge/{name}"
    if name.startswith("human_"):
        return f"review/{name}"
    return f"heldout/{name}" if name in heldout else f"monitors/{name}"


def iteration_payload(store: RunStore, iteration: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """What the loop sends after an iteration's monitor stage: tracker-named metrics (no None) and sample rows.

    Held-out metrics become `heldout/<name>` and `heldout/<task>/<name>`, judge statistics `judge/<name>`,
    monitor values `monitors/<name>`; plus `stage_seconds/<stage>`, `memory/peak_rss_mib/<stage>` (Linux), `training/<loss|examples|steps|tokens>`,
    `selection/kept`, `judge/failed` and `monitors/alerts`.
    """
    rows = store.metrics(iteration)
    heldout = {r["name"] for r in rows if r["task"]} | {"heldout_metric"}
    judge_info = store.stage_info(iteration, "judge") or {}
    metrics = {_metric_name(r["name"], r["task"], heldout, set(judge_info)): r["value"] for r in rows}
    stages = store.stage_seconds(iteration)
    metrics |= {f"stage_seconds/{stage}": s for stage, s in stages.items()}
    metrics |= {f"memory/peak_rss_mib/{s}": (store.stage_info(iteration, s) or {}).get("peak_rss_mib") for s in stages}
    train = store.stage_info(iteration, "train") or {}
    metrics |= {f"training/{k}": train.get(k) for k in ("loss", "examples", "steps", "tokens")}
    select = store.stage_info(iteration, "select") or {}
    metrics["selection/kept"] = select.get("pairs", select.get("kept"))
    metrics["judge/failed"] = judge_info.get("failed")
    metrics["monitors/alerts"] = len(store.alerts(iteration)) if store.stage_done(iteration, "monitor") else None
    return _finite(metrics), sample_rows(store, iteration)


def agreement_snapshot(store: RunStore) -> dict[int, dict[str, float]]:
    """Every human checkpoint's agreement figures under their tracker names (`review/human_*`), by iteration."""
    snapshot = {}
    for iteration in sorted({item.iteration for item in store.review_items()}):
        rows = [r for r in store.metrics(iteration) if not r["task"] and r["name"].startswith("human_")]
        snapshot[iteration] = _finite({_metric_name(r["name"], "", set(), set()): r["value"] for r in rows})
    return snapshot


def send_agreement(tracker: Tracker, store: RunStore, before: Mapping[int, Mapping[str, float]]) -> list[int]:
    """Send each rated checkpoint whose figures differ from `before` (an `agreement_snapshot`), stepped by its
    iteration; returns the iterations sent."""
    sent = []
    for iteration, figures in agreement_snapshot(store).items():
        if figures.get("review/human_ratings") and figures != before.get(iteration):
            tracker.log_iteration(iteration, figures)
            sent.append(iteration)
    return sent


def sample_rows(store: RunStore, iteration: int, limit: int = MAX_SAMPLE_ROWS) -> list[dict[str, Any]]:
    """The best and worst judged sample of up to `limit` of the iteration's training prompts, tasks taking turns."""
    scores: dict[str, float] = {}
    for j in store.judgments(iteration):
        if j.score is not None:
            scores.setdefault(j.sample_id, j.score)
    prompts = {p.id: p for p in store.prompts(split="train")}
    scored = defaultdict(list)  # prompt id -> [(score, sample)]
    for s in store.samples(iteration):
        if s.prompt_id in prompts and s.id in scores:
            scored[s.prompt_id].append((scores[s.id], s))
    by_task = defaultdict(list)
    for prompt_id in scored:
        by_task[prompts[prompt_id].task].append(prompt_id)
    turns = [p for p in chain.from_iterable(zip_longest(*by_task.values())) if p is not None]
    rows = []
    for prompt_id in turns[:limit]:
        best = max(scored[prompt_id], key=lambda x: (x[0], -x[1].index))  # ties: the first sample
        worst = min(scored[prompt_id], key=lambda x: (x[0], x[1].index))
        rows.append({
            "task": prompts[prompt_id].task, "prompt": prompts[prompt_id].text[:TEXT_CHARS],
            "best_score": best[0], "best": best[1].text[:TEXT_CHARS],
            "worst_score": worst[0], "worst": worst[1].text[:TEXT_CHARS], "samples": len(scored[prompt_id]),
        })
    return rows
