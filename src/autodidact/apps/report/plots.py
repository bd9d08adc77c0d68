"""The report's eight plots, each a PNG `data:` URI built from per-iteration rows.

Every function takes the rows of `autodidact.loop.iteration_rows` (plain dicts:
overall metrics by name, `tasks` -> {task: {metric: value}}, `kept`, `seconds`)
and always returns an image: a plot whose data is absent says so on the canvas,
so the report has the same eight plots for a run of any age or configuration.
Figures are built with the object API (`matplotlib.figure.Figure`), which needs
no pyplot backend or global state.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from autodidact.loop.stages.names import STAGES

Rows = Sequence[Mapping]
_SIZE, _DPI = (7.0, 3.4), 100


def series(rows: Rows, name: str) -> tuple[list[int], list[float]]:
    """(iterations, values) of an overall metric, skipping iterations where it is absent or None."""
    points = [(r["iteration"], r[name]) for r in rows if r.get(name) is not None]
    return [p[0] for p in points], [float(p[1]) for p in points]


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    return fig, ax


def _no_data(ax: Axes, note: str = "no data") -> None:
    ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _integer_ticks(ax: Axes, rows: Rows) -> None:
    iterations = sorted({r["iteration"] for r in rows})
    ax.set_xticks(iterations)
    ax.set_xlim(iterations[0] - 0.6, iterations[-1] + 0.6)  # a lone bar stays bar-sized


def _lines(ax: Axes, rows: Rows, names: Sequence[str], labels: Mapping[str, str] | None = None) -> bool:
    """Plot each present metric as a line; whether any was present."""
    drawn = False
    for name in names:
        xs, ys = series(rows, name)
        if xs:
            ax.plot(xs, ys, marker="o", label=(labels or {}).get(name, name))
            drawn = True
    return drawn


def _finish(fig: Figure, ax: Axes, rows: Rows, drawn: bool, note: str = "no data") -> str:
    if drawn:
        _integer_ticks(ax, rows)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    else:
        _no_data(ax, note)
    return to_data_uri(fig)


def to_data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG `data:` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heldout_plot(rows: Rows) -> str:
    """Held-out pass rate per task with its 95% interval (error bars), the overall held-out metric, and the
    mean pass rate on the paraphrased held-out set where the run has one."""
    fig, ax = _figure("Held-out metric per iteration (95% interval per task)")
    drawn = False
    tasks = sorted({t for r in rows for t in r.get("tasks", {})})
    for i, task in enumerate(tasks):
        points = [(r["iteration"], r["tasks"][task]) for r in rows
                  if r.get("tasks", {}).get(task, {}).get("pass_rate") is not None]
        if not points:
            continue
        offset = 0.06 * (i - (len(tasks) - 1) / 2)  # side by side, so that intervals do not hide each other
        rates = [m["pass_rate"] for _, m in points]
        # matplotlib rejects negative error lengths; a missing bound draws none
        lows = [max(0.0, m["pass_rate"] - (m.get("pass_low") if m.get("pass_low") is not None else m["pass_rate"]))
                for _, m in points]
        highs = [max(0.0, (m.get("pass_high") if m.get("pass_high") is not None else m["pass_rate"]) - m["pass_rate"])
                 for _, m in points]
        ax.errorbar([it + offset for it, _ in points], rates, yerr=[lows, highs], marker="o", capsize=4,
                    label=f"{task} pass rate")
        drawn = True
    xs, ys = series(rows, "heldout_metric")
    if xs:
        ax.plot(xs, ys, marker="s", color="black", linestyle="--", label="heldout_metric")
        drawn = True
    xs, ys = series(rows, "paraphrase_pass_rate")
    if xs:  # the held-out set worded in phrasings training never used
        ax.plot(xs, ys, marker="D", color="gray", linestyle=":", label="paraphrased pass rate (mean)")
        drawn = True
    ax.set_ylabel("pass rate")
    return _finish(fig, ax, rows, drawn)


def judge_plot(rows: Rows) -> str:
    """Reward-hacking monitor: judge scores (left axis) against the held-out metric (right axis)."""
    fig, ax = _figure("Judge score vs held-out metric (reward hacking)")
    labels = {"judge_score": "held-out judge score", "train_judge_score": "training judge score",
              "reference_judge_score": "reference judge score"}
    drawn = _lines(ax, rows, list(labels), labels)
    ax.set_ylabel("judge score")
    xs, ys = series(rows, "heldout_metric")
    if xs:
        twin = ax.twinx()
        twin.plot(xs, ys, marker="s", color="black", linestyle="--", label="heldout_metric (right)")
        twin.set_ylabel("held-out metric")
        handles, names = ax.get_legend_handles_labels()
        more_handles, more_names = twin.get_legend_handles_labels()
        twin.legend(handles + more_handles, names + more_names, fontsize=8, loc="best")
        _integer_ticks(ax, rows)
        return to_data_uri(fig)
    return _finish(fig, ax, rows, drawn)


def bias_plot(rows: Rows) -> str:
    """Bias monitor: position consistency, score-length correlation and judge disagreement."""
    fig, ax = _figure("Judge bias: position, length, disagreement")
    drawn = _lines(ax, rows, ("position_consistency", "score_length_corr", "disagreement"))
    return _finish(fig, ax, rows, drawn)


def diversity_plot(rows: Rows) -> str:
    """Mode-collapse monitor: distinct-n, self-BLEU and embedding similarity of samples."""
    fig, ax = _figure("Sample diversity (mode collapse)")
    drawn = _lines(ax, rows, ("distinct_1", "distinct_2", "self_bleu", "embedding_similarity"))
    return _finish(fig, ax, rows, drawn)


def returns_plot(rows: Rows) -> str:
    """Diminishing-returns monitor: held-out gain of each iteration (bars) and its trend (line)."""
    fig, ax = _figure("Gain per iteration (diminishing returns)")
    xs, ys = series(rows, "gain")
    if xs:
        ax.bar(xs, ys, width=0.6, color=["tab:green" if y >= 0 else "tab:red" for y in ys], label="gain")
        ax.axhline(0.0, color="black", linewidth=0.8)
    drawn = _lines(ax, rows, ("gain_trend",)) or bool(xs)
    return _finish(fig, ax, rows, drawn)


def reliability_plot(rows: Rows) -> str:
    """Reliability monitor: agreement of the judge with human ratings at each checkpoint."""
    names = ("human_agreement", "human_spearman", "human_kappa", "human_accuracy")
    rated = any(r.get(name) is not None for r in rows for name in names)
    title = "Judge vs human ratings (reliability)" if rated else "Judge vs human ratings: no ratings yet"
    fig, ax = _figure(title)
    drawn = _lines(ax, rows, names)
    return _finish(fig, ax, rows, drawn, "no human ratings")


def timings_plot(rows: Rows) -> str:
    """Seconds of each stage per iteration, stacked."""
    fig, ax = _figure("Seconds per stage")
    seen = [s for r in rows for s in r.get("seconds", {})]
    stages = [s for s in STAGES if s in seen] + sorted(set(seen) - set(STAGES))
    xs = [r["iteration"] for r in rows]
    bottom = [0.0] * len(rows)
    for stage in stages:
        values = [float(r.get("seconds", {}).get(stage, 0.0)) for r in rows]
        ax.bar(xs, values, width=0.6, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("seconds")
    return _finish(fig, ax, rows, bool(stages))


def kept_plot(rows: Rows, unit: str = "samples") -> str:
    """Training samples (SFT) or preference pairs (DPO) kept by selection per iteration."""
    fig, ax = _figure(f"{unit.capitalize()} kept per iteration")
    points = [(r["iteration"], r["kept"]) for r in rows if r.get("kept") is not None]
    if points:
        ax.bar([p[0] for p in points], [p[1] for p in points], width=0.6, color="tab:purple")
    ax.set_ylabel(unit)
    return _finish(fig, ax, rows, bool(points), "no data (iteration 0 trains nothing)")
