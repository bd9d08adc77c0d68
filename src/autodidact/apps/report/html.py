"""Assemble the report page from the store: header, alerts, plots, metrics table, documents, example tables.

All text reaches the page through a Jinja2 environment with autoescaping on,
so generated samples, rationales, prompts, alert messages and config values
are always escaped; the only markup not written by the template is the PNG
`data:` URIs of the plots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from autodidact.apps.report import plots
from autodidact.apps.report.documents import documents_section
from autodidact.apps.summary import control_notes, read_config
from autodidact.records import Judgment
from autodidact.stopping import best_phrase
from autodidact.store import RunStore

# Overall metrics in table order; any other metric found in the store follows them.
METRIC_ORDER = (
    "heldout_metric", "pass_rate", "paraphrase_pass_rate", "judge_score", "judge_auc", "mean_tokens",
    "train_judge_score", "reference_judge_score", "position_consistency", "tie_rate", "score_length_corr",
    "disagreement", "vote_margin",
    "distinct_1", "distinct_2", "self_bleu", "embedding_similarity", "vote_flip_rate", "vote_kept", "vote_right_kept",
    "gain", "gain_trend", "human_ratings",
    "human_spearman", "human_kappa", "human_accuracy", "human_agreement",
)
_ROW_KEYS = {"iteration", "tasks", "kept", "judge_failed_train", "heldout_judge", "seconds"}


@dataclass(frozen=True)
class PlotSpec:
    """One plot of the page: its element id, how to draw it, and what it shows / what a bad sign looks like."""

    id: str
    draw: Callable[[Sequence[Mapping]], str]
    caption: str


def plot_specs(unit: str = "samples") -> tuple[PlotSpec, ...]:
    """The eight plots in page order; `unit` names what selection keeps ('samples' or 'pairs')."""
    return (
        PlotSpec("plot-heldout", plots.heldout_plot,
                 "Pass rate on held-out prompts per task (bars: 95% interval), the overall held-out metric and, "
                 "where the run has it, the mean pass rate on held-out prompts worded in phrasings training never "
                 "used. Bad sign: flat or falling after training, intervals that overlap the base model's, or a "
                 "gain the paraphrased prompts do not share (learnt from the prompt templates)."),
        PlotSpec("plot-judge", plots.judge_plot,
                 "Mean judge score (left axis) against the held-out metric (right axis). "
                 "Bad sign: the judge score rising while the held-out metric stays flat or falls (reward hacking)."),
        PlotSpec("plot-bias", plots.bias_plot,
                 "Position consistency (same verdict with the order swapped), score-length correlation, disagreement "
                 "between judges. Bad sign: consistency near 0.5, a strong length correlation, high disagreement."),
        PlotSpec("plot-diversity", plots.diversity_plot,
                 "Distinct 1/2-grams (higher = more varied), self-BLEU and embedding similarity (higher = more alike). "
                 "Bad sign: distinct-n falling while self-BLEU or similarity rises (mode collapse)."),
        PlotSpec("plot-returns", plots.returns_plot,
                 "Change of the held-out metric from the previous iteration (bars) and its trend. "
                 "Bad sign: gains shrinking toward zero or below (diminishing returns)."),
        PlotSpec("plot-reliability", plots.reliability_plot,
                 "Agreement of the judge with human ratings at each review checkpoint. "
                 "Bad sign: low or falling agreement: the judge no longer tracks what people prefer."),
        PlotSpec("plot-timings", plots.timings_plot,
                 "Wall seconds of each stage per iteration. Bad sign: a stage growing every iteration."),
        PlotSpec("plot-kept", partial(plots.kept_plot, unit=unit),
                 "Training samples (SFT) or pairs (DPO) that selection kept. "
                 "Bad sign: a falling count (the judge rejects more, or samples become alike)."),
    )


def _get(config: Mapping, dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def header(run_dir: Path, config: Mapping, store: RunStore) -> list[tuple[str, Any]]:
    """(label, value) pairs shown at the top of the page; '-' where unknown."""
    tasks = _get(config, "tasks.names")
    fields = [
        ("run", config.get("name") or run_dir.name),
        ("model", _get(config, "model.name")),
        ("tasks", ", ".join(map(str, tasks)) if isinstance(tasks, list) else tasks),
        ("judge method", _get(config, "judge.method")),
        ("training method", _get(config, "training.method")),
        ("stop reason", store.get_meta("stop_reason") or "not stopped (running or killed)"),
        ("best iteration", _best(store)),
    ]
    return [(label, "-" if value is None else value) for label, value in fields]


def _best(store: RunStore) -> str:
    """The run's best iteration in the words of the run summary, export and chat (`stopping.best_phrase`)."""
    best = store.get_meta("best_iteration")
    return best_phrase(None if best is None else int(best), int(store.last_checkpoint() is not None))


def metric_columns(rows: Sequence[Mapping]) -> list[str]:
    """Overall metric names with a number in any row, known ones first in METRIC_ORDER."""
    present = {k for r in rows for k, v in r.items()
               if k not in _ROW_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return [m for m in METRIC_ORDER if m in present] + sorted(present - set(METRIC_ORDER))


def paraphrase_tasks(rows: Sequence[Mapping]) -> list[str]:
    """Tasks with a pass rate on the paraphrased held-out set in any row, by name."""
    return sorted({t for r in rows for t, m in r.get("tasks", {}).items() if m.get("paraphrase_pass_rate") is not None})


def _judgment_view(text: str, judgment: Judgment) -> dict[str, Any]:
    return {"text": text, "score": judgment.score, "rationale": judgment.rationale}


def examples(store: RunStore, iteration: int, limit: int = 5) -> list[dict[str, Any]]:
    """Up to `limit` training prompts of an iteration with their best- and worst-judged samples.

    When several judges scored the training samples, the one that scored most of them is used.
    Each item: {prompt, task, n, best, worst}, `worst` None when only one sample was scored.
    """
    train = {p.id: p for p in store.prompts(split="train")}
    samples = {s.id: s for s in store.samples(iteration) if s.prompt_id in train}
    scored = [j for j in store.judgments(iteration) if j.sample_id in samples and j.score is not None]
    if not scored:
        return []
    judge = Counter(j.judge for j in scored).most_common(1)[0][0]
    by_prompt: dict[str, list] = {}
    for j in scored:
        if j.judge == judge:
            by_prompt.setdefault(samples[j.sample_id].prompt_id, []).append(j)
    items = []
    for prompt_id, judgments in list(by_prompt.items())[:limit]:
        ordered = sorted(judgments, key=lambda j: (-j.score, samples[j.sample_id].index))
        best, worst = ordered[0], ordered[-1]
        items.append({
            "prompt": train[prompt_id].text,
            "task": train[prompt_id].task,
            "n": len(ordered),
            "best": _judgment_view(samples[best.sample_id].text, best),
            "worst": _judgment_view(samples[worst.sample_id].text, worst) if len(ordered) > 1 else None,
        })
    return items


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    source = resources.files("autodidact.apps.report").joinpath("template.html.j2").read_text(encoding="utf-8")
    return env.from_string(source)


def render(run_dir: Path, store: RunStore, rows: Sequence[Mapping], examples_per_iteration: int = 5) -> str:
    """The whole page as one self-contained HTML string."""
    config = read_config(run_dir)
    unit = "pairs" if _get(config, "training.method") == "dpo" else "samples"
    figures = []
    for spec in plot_specs(unit):
        figures.append({"id": spec.id, "caption": spec.caption, "uri": spec.draw(rows), "alt": spec.id[5:]})
    trained = [r["iteration"] for r in rows if r["iteration"] > 0]
    example_sets = [{"iteration": it, "items": examples(store, it, examples_per_iteration)}
                    for it in sorted(trained, reverse=True)]
    return _template().render(
        title=f"AutoDidact report: {config.get('name') or run_dir.name}",
        header=header(run_dir, config, store),
        alerts=store.alerts(),
        control_notes=control_notes(config),
        plots=figures,
        rows=rows,
        tasks=sorted({t for r in rows for t in r.get("tasks", {})}),
        paraphrase_tasks=paraphrase_tasks(rows),
        columns=metric_columns(rows),
        unit=unit,
        example_sets=[s for s in example_sets if s["items"]],
        documents=documents_section(store, config, rows),
    )
