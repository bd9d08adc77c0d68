"""The per-iteration tables printed at the end of a run (and by `autodidact eval`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from autodidact.config.yaml_safe import load_yaml
from autodidact.loop.stages.names import STAGES


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _pass_cell(m: dict) -> str:
    if m.get("pass_rate") is None:
        return "-"
    return f"{_pct(m['pass_rate'])} [{_pct(m['pass_low'])}, {_pct(m['pass_high'])}]"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def iteration_table(rows: Sequence[dict], task_names: Sequence[str], title: str = "Held-out results") -> Table:
    """Pass rate % [95% Wilson interval] per task, mean pass rate (and on the paraphrased held-out set, where
    the run has one), judge score and AUC, length, samples kept."""
    paraphrased = any(row.get("paraphrase_pass_rate") is not None for row in rows)
    caption = (
        "pass % [95% CI] on held-out prompts; judge score 0-10 and judge AUC (how well the score ranks "
        "passing above failing answers; 0.5 = chance) from the held-out judge"
    )
    if paraphrased:
        caption += (
            "; paraphrased pass %: mean over the built-in tasks on held-out prompts in phrasings training never "
            "used (a gain missing there was learnt from the prompt templates)"
        )
    table = Table(title=title, caption=caption)
    table.add_column("iter", justify="right")
    for name in task_names:
        table.add_column(name, justify="right")
    headers = ["mean pass %", "paraphrased pass %", "judge", "judge AUC", "tokens", "kept"]
    if not paraphrased:
        headers.remove("paraphrased pass %")
    for header in headers:
        table.add_column(header, justify="right")
    for row in rows:
        cells = [
            str(row["iteration"]),
            *(_pass_cell(row["tasks"].get(name, {})) for name in task_names),
            _pct(row.get("pass_rate")),
            *([_pct(row.get("paraphrase_pass_rate"))] if paraphrased else []),
            _num(row.get("judge_score")),
            _num(row.get("judge_auc")),
            _num(row.get("mean_tokens"), "{:.0f}"),
            "-" if row.get("kept") is None else str(row["kept"]),
        ]
        table.add_row(*cells)
    return table


def timing_table(rows: Sequence[dict]) -> Table:
    """Wall seconds of each stage, per iteration."""
    table = Table(title="Seconds per stage")
    table.add_column("iter", justify="right")
    for stage in (*STAGES, "total"):
        table.add_column(stage, justify="right")
    for row in rows:
        seconds = row.get("seconds", {})
        total = sum(seconds.values()) if seconds else None
        table.add_row(str(row["iteration"]), *(_num(seconds.get(s), "{:.1f}") for s in STAGES), _num(total, "{:.1f}"))
    return table


# A documents task's two held-out sets: book -> (the prefix the evaluate stage stores its figures under, its name).
# Open book: questions about held-out chunks, answered with search (split heldout); closed book: reworded
# questions about trained facts, answered from memory (split heldout_paraphrase, stored as paraphrase_*).
BOOKS = {"open": ("", "open-book reading"), "closed": ("paraphrase_", "closed-book recall")}


@dataclass(frozen=True)
class Accuracy:
    """A pass rate over `n` graded answers with its 95% Wilson interval, as the evaluate stage stored them."""

    rate: float
    n: int
    low: float
    high: float

    def __str__(self) -> str:
        return f"{_pct(self.rate)} [{_pct(self.low)}, {_pct(self.high)}] n={self.n}"


def book_accuracy(metrics: Mapping[str, float | None], book: str) -> Accuracy | None:
    """A task's stored accuracy on one book's held-out set (None where not measured).

    Args:
        metrics: the task's metrics of one iteration (a row's `tasks[name]`).
        book: "open" or "closed" (`BOOKS`).
    """
    prefix = BOOKS[book][0]
    rate, low, high = (metrics.get(f"{prefix}{k}") for k in ("pass_rate", "pass_low", "pass_high"))
    if rate is None or low is None or high is None:
        return None
    graded = (metrics.get(f"{prefix}n") or 0) - (metrics.get(f"{prefix}ungraded") or 0)  # the interval's n
    return Accuracy(rate, int(graded), low, high)


def documents_sources(config: Mapping) -> list[Mapping]:
    """The documents sources of a saved config (a plain dict), in config order."""
    tasks = config.get("tasks") if isinstance(config.get("tasks"), Mapping) else {}
    sources = tasks.get("sources") if isinstance(tasks.get("sources"), list) else []
    return [s for s in sources if isinstance(s, Mapping) and s.get("type") == "documents"]


def documents_table(rows: Sequence[dict], task_names: Sequence[str]) -> Table:
    """Open-book reading and closed-book recall % [95% CI] n=graded, per documents task and iteration."""
    table = Table(
        title="Documents: what the model learnt from them",
        caption="open-book reading: questions about held-out chunks, answered with search; closed-book recall: "
        "held-out rewordings of trained facts, answered from memory. Iteration 0 is the base model.",
    )
    table.add_column("iter", justify="right")
    for name in task_names:
        for book in BOOKS.values():
            table.add_column(f"{name} {book[1]} %", justify="right")
    for row in rows:
        cells = [book_accuracy(row["tasks"].get(name, {}), book) for name in task_names for book in BOOKS]
        table.add_row(str(row["iteration"]), *("-" if c is None else str(c) for c in cells))
    return table


def alerts_table(alerts: Sequence) -> Table:
    """Every alert the monitors raised: iteration, failure mode, what was seen, whether it stopped the run."""
    table = Table(title="Alerts: known failure modes detected", title_style="bold red", show_lines=True)
    table.add_column("iter", justify="right")
    table.add_column("monitor")
    table.add_column("what was seen")
    table.add_column("stopped", justify="center")
    for alert in alerts:
        table.add_row(str(alert.iteration), alert.monitor, alert.message, "yes" if alert.stop else "")
    return table


def control_tasks(config: Mapping) -> list[str]:
    """The tasks a saved config (a plain dict) trains with the control arm: their judge is `random`."""
    judge = config.get("judge") if isinstance(config.get("judge"), Mapping) else {}
    routed = judge.get("tasks") if isinstance(judge.get("tasks"), Mapping) else {}
    tasks = (config.get("tasks") or {}).get("names") or [] if isinstance(config.get("tasks"), Mapping) else []
    names = [*(t for t in tasks if isinstance(t, str)), *(t for t in routed if t not in tasks)]
    method = lambda section: section.get("method", "direct") if isinstance(section, Mapping) else None  # noqa: E731
    return [t for t in names if method(routed.get(t, judge)) == "random"]


def control_notes(config: Mapping) -> list[str]:
    """One line per task trained without self-evaluation (judge `random`), for the summary and the report."""
    return [
        f"{task}: no self-evaluation. The run trains on a uniformly random sample per prompt (judge.method random, "
        "the control arm). The default does so on instructions, where judging added nothing over it for the "
        "bundled model (docs/RESULTS.md, 'Self-evaluation against a control arm')."
        for task in control_tasks(config)
    ]


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's saved config.yaml as a plain dict ({} when absent or unreadable)."""
    try:
        data = load_yaml((run_dir / "config.yaml").read_text(encoding="utf-8"))  # bounded: a copied run may be hostile
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
