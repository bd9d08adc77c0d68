"""`autodidact compare`: every judging method on the same model, tasks, seeds and budget, side by side.

Each method is a run made from one base config (configs/default.yaml) and
the method's overrides, in its own run directory (`<output_dir>/<method>`).
After the SFT runs, the best `dpo_best` self-judges (highest mean held-out
pass rate at the last iteration; the verifier is the supervised upper bound,
not a self-judge) are run again with DPO as `<method>-dpo`.

A method whose run directory already holds a run with the same config is
resumed, not redone (a finished run returns at once), so an interrupted
comparison continues where it stopped. A run directory holding a different
config is an error rather than a silent mix of two experiments.

Results: a markdown table between `<!-- compare:start -->` and
`<!-- compare:end -->` in the results file (the rest of the file is left as
it is), and every number per run and iteration in `<output_dir>/compare.json`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from statistics import fmean

from autodidact.apps.control import heldout_verdicts, over_control, points
from autodidact.config import RunConfig, load_config
from autodidact.errors import AutodidactError, unknown_name
from autodidact.evaluation import wilson_interval
from autodidact.loop import CONFIG_FILE, STORE_FILE, RunResult, collect_result, resume, run
from autodidact.store import RunStore

# One record per method: the --set overrides that make it from the base config.
METHODS: dict[str, list[str]] = {
    "direct": ["judge.method=direct"],
    "rubric": ["judge.method=rubric"],
    "pairwise": ["judge.method=pairwise"],
    "contrastive": ["judge.method=contrastive"],
    "contrastive_revise": ["judge.method=contrastive", "selection.revise=true"],
    # Instruction answers have no final number to vote on: those judgments fail and are left out,
    # so up to 90% may fail before the run stops (the default 50% would stop it at once).
    "self_consistency": ["judge.method=self_consistency", "judge.max_failed_share=0.9"],
    "ensemble": ["judge.method=ensemble", "judge.members=[{method: direct}, {method: rubric}]"],
    "verifier": ["judge.method=verifier"],
    # The control arm: a uniformly random valid sample per prompt, every prompt kept. Every other method's
    # gain over it is what its self-evaluation adds over training on the model's own samples.
    "random": ["judge.method=random", "selection.min_score=null"],
}
CONTROL = "random"
DEFAULT_METHODS = ("direct", "rubric", "pairwise", "contrastive", "self_consistency", "ensemble", "verifier", CONTROL)
DPO_SUFFIX, DPO_OVERRIDES = "-dpo", ["training.method=dpo"]
NOT_SELF_JUDGES = {"verifier", CONTROL}  # ground truth (the upper bound) and chance: never picked for DPO
# Revisions are SFT examples (the DPO run of contrastive is "contrastive-dpo"); random scores make no preference.
NO_DPO = {"contrastive_revise", CONTROL}
MARK_START, MARK_END = "<!-- compare:start -->", "<!-- compare:end -->"
JSON_FILE = "compare.json"

log = logging.getLogger(__name__)


@dataclass
class MethodSummary:
    """One run of the comparison, as it appears in the table and in compare.json."""

    method: str
    training: str  # "sft" or "dpo"
    heldout_judge: str | None  # the judge that scored held-out answers (direct for relative judges)
    run_dir: str
    # Per iteration: passed / graded held-out answers of all tasks pooled, that rate with its 95% Wilson
    # interval, the run's mean pass rate over tasks, judge AUC vs the verifier, and position consistency
    # (pairwise / contrastive training judgments; None for other judges and for iteration 0).
    iterations: list[dict]
    tokens: int  # generated for training: samples, the judge's own text (reasoning, explanations), revisions
    minutes: float  # wall time of every stage of every iteration
    error: str | None = None  # why the run stopped before its last iteration, if it did
    # The held-out pass rate minus the control arm's at the last iteration both reached, paired per prompt
    # ({"iteration", "gain", "low", "high"}, pass-rate units; `apps.control`); None without a control run.
    over_random: dict | None = None

    @property
    def final_mean_pass_rate(self) -> float | None:
        """The mean held-out pass rate at the last iteration; None for a run that stopped early."""
        return self.iterations[-1]["mean_pass_rate"] if self.iterations and self.error is None else None


@dataclass
class Comparison:
    summaries: list[MethodSummary]  # the methods given, then the DPO runs
    settings: dict  # what every run shared: command, base config, model, seed, sizes, date
    table: str  # the markdown written between the markers


def method_overrides(method: str) -> list[str]:
    """The --set overrides of a method name: one of METHODS, or one of them with "-dpo"."""
    base = method.removesuffix(DPO_SUFFIX)
    dpo = base != method
    if base not in METHODS or (dpo and base in NO_DPO):
        known = [*METHODS, *(m + DPO_SUFFIX for m in METHODS if m not in NO_DPO)]
        raise unknown_name("method", method, known, field="--methods")
    # One method for every task: a base config's per-task judges (judge.tasks) would mix methods in a row.
    return ["judge.tasks={}", *METHODS[base], *(DPO_OVERRIDES if dpo else [])]


def best_self_judges(final_pass: dict[str, float | None], k: int) -> list[str]:
    """The k SFT self-judge methods with the highest final mean pass rate (ties: the earlier one; None: never)."""
    candidates = [
        m for m, rate in final_pass.items()
        if rate is not None and m in METHODS and m not in NOT_SELF_JUDGES | NO_DPO
    ]
    return sorted(candidates, key=lambda m: -final_pass[m])[:k]


def budget_overrides(base: RunConfig, budget: float) -> list[str]:
    """Scale training prompts per iteration and held-out prompts by `budget` (at least 1 each)."""
    if not 0 < budget <= 1:
        raise AutodidactError(f"--budget {budget:g}: give a share in (0, 1], e.g. 0.25 for a quarter of the prompts.")
    t = base.tasks
    return [
        f"tasks.prompts_per_iteration={max(1, round(t.prompts_per_iteration * budget))}",
        f"tasks.heldout_size={max(1, round(t.heldout_size * budget))}",
    ]


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found = _first_difference(x, y, f"{prefix}{key}.")
            if found:
                return found
        elif x != y:
            return f"{prefix}{key}: {x!r} there, {y!r} now"
    return ""


def run_method(method: str, config: RunConfig) -> MethodSummary:
    """Start the method's run, or resume the one in its run directory when that has the same config.

    A run that stops with an error (e.g. too many failed judgments) does not
    stop the comparison: its summary holds the iterations it evaluated and the error.
    """
    run_dir = config.run_dir()
    exists = (run_dir / CONFIG_FILE).is_file()
    saved = load_config(run_dir / CONFIG_FILE) if exists else config
    # A saved output_dir says where the run began: a comparison moved elsewhere (--output-dir) resumes its runs.
    saved = saved.model_copy(update={"output_dir": config.output_dir})
    if saved != config:
        difference = _first_difference(saved.model_dump(mode="json"), config.model_dump(mode="json"))
        raise AutodidactError(
            f"'{run_dir}' holds a run with a different config ({difference}). Delete it, or compare into "
            "another --output-dir."
        )
    try:
        result = resume(run_dir) if exists else run(config)
    except AutodidactError as exc:
        if not (run_dir / STORE_FILE).is_file():
            raise  # nothing ran (e.g. the model does not load): every other method would fail the same way
        log.warning("%s stopped: %s", method, exc)
        with RunStore(run_dir / STORE_FILE) as store:
            result = collect_result(run_dir, store)
        return summarize(method, config, result, error=str(exc))
    return summarize(method, config, result)


def summarize(method: str, config: RunConfig, result: RunResult, error: str | None = None) -> MethodSummary:
    """The table's numbers for one run, read from its result and its store."""
    iterations, tokens = [], 0
    with RunStore(result.run_dir / STORE_FILE) as store:
        for row in result.iterations:
            graded = {name: m["n"] - m["ungraded"] for name, m in row["tasks"].items() if m["pass_rate"] is not None}
            passed = sum(round(row["tasks"][name]["pass_rate"] * n) for name, n in graded.items())
            total = int(sum(graded.values()))
            low, high = wilson_interval(passed, total)
            iterations.append({
                "iteration": row["iteration"],
                "passed": passed,
                "graded": total,
                "pass_rate": passed / total if total else None,
                "pass_low": low if total else None,
                "pass_high": high if total else None,
                "mean_pass_rate": row.get("pass_rate"),
                "judge_auc": row.get("judge_auc"),
                "position_consistency": row.get("position_consistency"),
            })
            generate = store.stage_info(row["iteration"], "generate") or {}
            judge = store.stage_info(row["iteration"], "judge") or {}
            tokens += generate.get("tokens", 0) + judge.get("judge_tokens", 0) + judge.get("revision_tokens", 0)
    heldout_judges = {row["heldout_judge"] for row in result.iterations}
    seconds = sum(sum(row["seconds"].values()) for row in result.iterations)
    return MethodSummary(
        method=method,
        training=config.training.method,
        heldout_judge=heldout_judges.pop() if len(heldout_judges) == 1 else None,
        run_dir=str(result.run_dir),
        iterations=iterations,
        tokens=tokens,
        minutes=seconds / 60,
        error=error,
    )


def add_over_random(summaries: dict[str, MethodSummary]) -> None:
    """Set each method's `over_random` from its run's and the control run's held-out verdicts (one seed)."""
    if CONTROL not in summaries:
        return
    control_verdicts = {0: heldout_verdicts(Path(summaries[CONTROL].run_dir))}
    for name, summary in summaries.items():
        if name == CONTROL:
            continue
        result = over_control({0: heldout_verdicts(Path(summary.run_dir))}, control_verdicts)
        if result and result["by_iteration"]:
            last = max(result["by_iteration"])
            summary.over_random = {"iteration": last, **result["by_iteration"][last]["all"]}


# --- output ----------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _pass_cell(it: dict) -> str:
    if it["pass_rate"] is None:
        return "-"
    return f"{_pct(it['pass_rate'])} [{_pct(it['pass_low'])}, {_pct(it['pass_high'])}]"


def _auc_cell(s: MethodSummary) -> str:
    return " / ".join("-" if it["judge_auc"] is None else f"{it['judge_auc']:.2f}" for it in s.iterations)


def _over_random_cell(s: MethodSummary) -> str:
    r = s.over_random
    return "-" if r is None else f"{points(r)} (iter {r['iteration']})"


def _consistency_cell(s: MethodSummary) -> str:
    values = [it["position_consistency"] for it in s.iterations if it["position_consistency"] is not None]
    return f"{fmean(values):.2f}" if values else "-"


def markdown_table(summaries: list[MethodSummary], settings: dict) -> str:
    """The comparison as markdown: a settings paragraph, then one row per method."""
    n_iter = max(len(s.iterations) for s in summaries)
    iter_headers = ["iter 0 (base)", *(f"iter {i}" for i in range(1, n_iter))]
    lines = [
        f"Command: `{settings['command']}`. Base config `{settings['config']}`, model `{settings['model']}`, "
        f"seed {settings['seed']}; per task and iteration {settings['prompts_per_iteration']} training prompts, "
        f"{settings['heldout_size']} held-out prompts. Measured {settings['date']}; raw numbers in "
        f"`{settings['json']}`.",
        "",
        "Held-out verifier pass %, all tasks pooled, [95% Wilson interval], per iteration. Judge AUC: how well the "
        "held-out judge's score ranks passing above failing held-out answers (0.5 = chance), per iteration. "
        "Position consistency: share of the judge's decided pairs whose verdict survived swapping A and B, mean "
        "over training iterations. Over random: held-out pass rate minus the control arm's (a uniformly random "
        "sample per prompt, same budget and training), points [95% CI], paired per prompt: what the method's "
        "self-evaluation adds over training on the model's own samples. Tokens: generated for training (samples, "
        "the judge's reasoning, revisions).",
        "",
        "| method | training | held-out judge | " + " | ".join(iter_headers)
        + " | over random | judge AUC | position consistency | tokens | minutes |",
        "|---|---|---|" + "---:|" * (n_iter + 5),
    ]
    for s in summaries:
        passes = [_pass_cell(it) for it in s.iterations] + ["-"] * (n_iter - len(s.iterations))
        label = s.method + (" (stopped)" if s.error else "")
        cells = [label, s.training.upper(), s.heldout_judge or "-", *passes, _over_random_cell(s), _auc_cell(s),
                 _consistency_cell(s),
                 f"{s.tokens:,}", f"{s.minutes:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    stopped = [f"- {s.method} stopped before its last iteration: {s.error}" for s in summaries if s.error]
    return "\n".join(lines + ([""] + stopped if stopped else []))


def replace_section(path: Path, body: str) -> None:
    """Put `body` between the compare markers of `path`, or append a section with them; nothing else changes."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{MARK_START}\n{body}\n{MARK_END}"
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 and end < 0:
        heading = "## Method comparison (`make compare`)\n\n"
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + heading + block + "\n"
    elif 0 <= start < end and text.count(MARK_START) == text.count(MARK_END) == 1:
        text = text[:start] + block + text[end + len(MARK_END):]
    else:
        raise AutodidactError(f"{path}: expected one '{MARK_START}' before one '{MARK_END}'. Fix the markers.")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the command ---------------------------------------------------------------------


def compare(
    config_path: str | Path = "configs/default.yaml",
    methods: list[str] | None = None,
    dpo_best: int = 2,
    budget: float = 1.0,
    iterations: int = 3,
    output_dir: str | Path = "runs/compare",
    results_path: str | Path = "docs/RESULTS.md",
    overrides: list[str] | None = None,
    command: str = "autodidact compare",
) -> Comparison:
    """Run (or resume) every method, then DPO for the best self-judges; write the table and the JSON.

    Args:
        config_path: the base config every run starts from.
        methods: names from `METHODS`, optionally with "-dpo"; default `DEFAULT_METHODS`.
        dpo_best: how many of the best SFT self-judges are run again with DPO (0: none).
        budget: share of the base config's training prompts per iteration and held-out prompts.
        iterations: training iterations of every run (early stopping is off: patience = iterations).
        output_dir: where the run directories and compare.json go.
        results_path: the markdown file whose compare section is replaced.
        overrides: --set overrides applied to every run before the method's own.
        command: the command line, recorded with the results.
    """
    methods = list(methods or DEFAULT_METHODS)
    overrides = list(overrides or [])
    if dpo_best < 0:
        raise AutodidactError(f"--dpo-best {dpo_best}: give 0 (no DPO runs) or more.")
    base = load_config(config_path, overrides)
    output_dir = Path(output_dir)
    shared = [
        *overrides,
        *budget_overrides(base, budget),
        f"stopping.max_iterations={iterations}",
        f"stopping.patience={iterations}",
        f"output_dir={output_dir}",
    ]

    def config_of(method: str) -> RunConfig:
        return load_config(config_path, [*shared, *method_overrides(method), f"name={method}"])

    configs = {m: config_of(m) for m in methods}  # every name and override checked before the first run
    summaries = {m: run_method(m, c) for m, c in configs.items()}
    final = {m: s.final_mean_pass_rate for m, s in summaries.items()}
    for method in best_self_judges(final, dpo_best):
        name = method + DPO_SUFFIX
        if name not in summaries:
            summaries[name] = run_method(name, config_of(name))

    add_over_random(summaries)
    rows = list(summaries.values())
    first = configs[methods[0]]
    settings = {
        "command": command,
        "config": str(config_path),
        "model": first.model.name,
        "seed": first.seed,
        "budget": budget,
        "iterations": iterations,
        "prompts_per_iteration": first.tasks.prompts_per_iteration,
        "heldout_size": first.tasks.heldout_size,
        "overrides": overrides,
        "date": date.today().isoformat(),
        "json": str(output_dir / JSON_FILE),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"settings": settings, "methods": [asdict(s) for s in rows]}
    (output_dir / JSON_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    table = markdown_table(rows, settings)
    replace_section(Path(results_path), table)
    return Comparison(rows, settings, table)
