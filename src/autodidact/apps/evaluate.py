"""`autodidact eval`: held-out evaluation of a model or a run's checkpoint, alone or paired with another.

MODEL answers every prompt of one held-out set (see `autodidact.apps.eval_inputs`
for where it comes from) greedily; the answers are verified and judged exactly
as a run's evaluate stage does, so `eval RUN_DIR --iteration N` reproduces the
figures the run stored for iteration N. With `--compare OTHER` a second model
answers the same prompts, and each task shows both pass rates (or mean judge
scores, for a task without references), their paired difference MODEL - OTHER
and its 95% paired t interval over the prompts (`evaluation.paired_difference`).

Every model answers in this process (transformers), whatever `model.engine` a
config names; a run's iteration loads in the dtype and on the device of its run.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from autodidact.apps.eval_inputs import (
    ITERATION_WORDS,
    HeldoutSet,
    Target,
    builtin_set,
    config_set,
    load_target,
    run_set,
    run_target,
    source_set,
    target,
)
from autodidact.apps.export import is_run_dir
from autodidact.config import JudgeConfig, RunConfig
from autodidact.config import judge_config as judge_section
from autodidact.engines import TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.evaluation import HeldoutResult, PairedDifference, evaluate_heldout, heldout_judge, paired_difference
from autodidact.judges import build_judge
from autodidact.judges.external import judge_engine
from autodidact.models import DTYPES
from autodidact.records import Prompt

MODEL_FIELD = "the MODEL argument of `autodidact eval`"
COMPARE_FIELD = "--compare OTHER"


@dataclass(frozen=True)
class Evaluation:
    """One model's answers to the held-out set: its target and the evaluate stage's result."""

    target: Target
    result: HeldoutResult

    def row(self, iteration: str) -> dict:
        """The model's figures as a row of the run's held-out table (`apps.summary.iteration_table`)."""
        metrics = dict(self.result.metrics)
        overall = metrics.pop("", {})
        return overall | {"iteration": iteration, "tasks": metrics}


@dataclass(frozen=True)
class Paired:
    """A task's paired comparison: what was compared ('pass' or 'judge') and the difference MODEL - OTHER."""

    task: str
    measure: str  # "pass": the verifier's grade 0-1; "judge": the held-out judge's score 0-10; "": neither
    difference: PairedDifference


@dataclass
class EvalReport:
    """What `autodidact eval` measured: the held-out set, each model's evaluation, the paired comparison."""

    heldout: HeldoutSet
    prompts: list[Prompt]
    evaluations: list[Evaluation] = field(default_factory=list)
    paired: list[Paired] = field(default_factory=list)

    def task_names(self) -> list[str]:
        return list(dict.fromkeys(p.task for p in self.prompts))


def evaluate(
    model: str,
    *,
    config: Path | None = None,
    source: Path | None = None,
    verifier: str | None = None,
    overrides: list[str] | None = None,
    tasks: list[str] | None = None,
    iteration: str | None = None,
    compare: str | None = None,
    heldout_size: int | None = None,
    seed: int | None = None,
    judge: str | None = None,
    max_new_tokens: int | None = None,
    dtype: str | None = None,
) -> EvalReport:
    """Evaluate MODEL (and OTHER, with `compare`) on one held-out set; see the module docstring.

    Every argument is checked, and both models resolved, before a model loads.

    Raises:
        AutodidactError: conflicting options, a bad config, source, run directory, iteration or model.
    """
    if verifier is not None and source is None:
        raise AutodidactError("--verifier grades the rows of --source; pass --source FILE with it, or remove it "
                              "(a config's sources name their own verifier).")
    heldout = _heldout_set(model, config, source, overrides or [], tasks or [], heldout_size, seed, verifier)
    if dtype is not None and dtype not in DTYPES:
        raise AutodidactError(f"--dtype '{dtype}': choose one of {', '.join(DTYPES)}.")
    judging = _judge_config(heldout.config, judge)
    targets = [target(model, iteration, MODEL_FIELD)]
    if compare is not None:
        targets.append(_other(compare, model))
    c = heldout.config
    answer_tokens = max_new_tokens or c.evaluation.max_new_tokens
    report = EvalReport(heldout, [])
    if not _needs_engine(c):  # the prompts are read before a model loads: a bad file fails in a second
        report.prompts = heldout.prompts(heldout.tasks(None, None))
    for chosen in targets:
        own = chosen.run_config.model if chosen.run_config is not None else c.model  # a run's iteration: its dtype
        policy, tokenizer = load_target(chosen, dtype or own.dtype, own.device)
        engine = TransformersEngine(policy, tokenizer, batch_size=c.generation.batch_size,
                                    score_batch_size=judging.batch_size if judging else c.judge.batch_size)
        scorer, task_objs = _judge_and_tasks(heldout, judging, engine)
        if not report.prompts:
            report.prompts = heldout.prompts(task_objs)
        result = evaluate_heldout(engine, scorer, task_objs, report.prompts, 0, answer_tokens,
                                  desc=f"evaluating {chosen.label}")
        report.evaluations.append(Evaluation(chosen, result))
        del policy, tokenizer, engine, scorer, task_objs
        gc.collect()  # one model in memory at a time
    if len(report.evaluations) == 2:
        report.paired = pair(report.prompts, *report.evaluations)
    return report


def pair(prompts: list[Prompt], a: Evaluation, b: Evaluation) -> list[Paired]:
    """Per task, the paired difference a - b over the prompts both models' answers were graded on.

    The verifier's grades where the task has them, else the held-out judge's scores.
    """
    out = []
    for task in dict.fromkeys(p.task for p in prompts):
        ids = [p.id for p in prompts if p.task == task]
        measure, difference = "", paired_difference([], [])
        for name, values in (("pass", _verdicts), ("judge", _scores)):
            va, vb = values(a.result), values(b.result)
            both = [i for i in ids if va.get(i) is not None and vb.get(i) is not None]
            if both:
                measure, difference = name, paired_difference([va[i] for i in both], [vb[i] for i in both])
                break
        out.append(Paired(task, measure, difference))
    return out


def comparison_table(report: EvalReport) -> Table:
    """Per task: the number of paired prompts, both models' figures, and MODEL - OTHER [95% CI]."""
    a, b = (e.target.label for e in report.evaluations)
    table = Table(
        title=f"Paired comparison on {report.heldout.describe}",
        caption=f"A = {a}, B = {b}. pass %: the verifier's pass rate; judge: the mean held-out judge score 0-10 "
        "(tasks without references). A - B: mean paired difference over the same prompts [95% paired t interval; "
        "zero width when the two agree on every prompt, which says nothing of prompts outside the set]",
    )
    for header in ("task", "measure", "prompts", "A", "B", "A - B [95% CI]"):
        table.add_column(header, justify="left" if header in ("task", "measure") else "right")
    for p in report.paired:
        d = p.difference
        interval = "" if d.low is None else f" [{_cell(d.low, p.measure, True)}, {_cell(d.high, p.measure, True)}]"
        measure = {"pass": "pass %", "judge": "judge 0-10"}.get(p.measure, "-")
        table.add_row(p.task, measure, str(d.n), _cell(d.mean_a, p.measure), _cell(d.mean_b, p.measure),
                      _cell(d.difference, p.measure, True) + interval)
    return table


def _cell(value: float | None, measure: str, signed: bool = False) -> str:
    """A pass rate in percent (1 decimal) or a judge score (2 decimals); '+0.0', never '-0.0'."""
    if value is None:
        return "-"
    scale, digits = (100.0, 1) if measure == "pass" else (1.0, 2)
    return f"{scale * value + 0.0:{'+' if signed else ''}.{digits}f}"


def _heldout_set(
    model: str, config: Path | None, source: Path | None, overrides: list[str], names: list[str],
    size: int | None, seed: int | None, verifier: str | None = None,
) -> HeldoutSet:
    """The held-out set the options name, after refusing options that do not go together."""
    if config is not None and source is not None:
        raise AutodidactError("--config and --source both name the prompts; give one of them.")
    if overrides and config is None:
        raise AutodidactError("--set overrides a key of --config; pass --config CONFIG with it, or remove --set.")
    if source is not None:
        if size is not None or seed is not None:
            raise AutodidactError("--heldout-size and --seed choose built-in prompts; remove them with --source "
                                  "(it evaluates every row of the file).")
        return source_set(source, names, verifier or "exact")
    if config is not None:
        return config_set(config, overrides, names, seed, size)
    if is_run_dir(model):
        if size is not None or seed is not None:
            raise AutodidactError(f"--heldout-size and --seed do not apply to the run {model}: its held-out prompts "
                                  "are stored. Remove them, or pass --config to build other prompts.")
        return run_set(model, names)
    return builtin_set(names, seed, size)


def _other(compare: str, model: str) -> Target:
    """--compare: an existing path (a run directory: its best iteration), an iteration of MODEL's run, or a spec."""
    word = compare.strip().lower()
    if not Path(compare).expanduser().exists() and is_run_dir(model) and (word in ITERATION_WORDS or word.isdigit()):
        return run_target(model, word, COMPARE_FIELD)
    return target(compare, None, COMPARE_FIELD)


def _judge_config(config: RunConfig, judge: str | None) -> JudgeConfig | None:
    """The held-out judge's section: --judge (a method name, 'none'), else the config's when it judges held-out."""
    if judge is not None:
        return None if judge == "none" else judge_section(method=judge)  # a bad name fails before a model loads
    return config.judge if config.evaluation.judge_heldout else None


def _judge_and_tasks(heldout: HeldoutSet, judging: JudgeConfig | None, engine: TransformersEngine):
    """The held-out judge (None without one) and the tasks, on this model's engine, as a run builds them."""
    config = heldout.config if judging is None else heldout.config.model_copy(update={"judge": judging})
    on = judge_engine(config, engine)  # the policy's engine, unless judge.model names another model or server
    task_objs = heldout.tasks(engine, on)
    if judging is None:
        return None, task_objs

    def engine_for(member):
        return judge_engine(config.model_copy(update={"judge": member}), engine)

    return heldout_judge(build_judge(judging, on, task_objs, engine_for=engine_for), judging, on), task_objs


def _needs_engine(config: RunConfig) -> bool:
    """Whether building the prompts needs the model: a documents source writes its questions with it."""
    return any(s.type == "documents" for s in config.tasks.sources)


def _verdicts(result: HeldoutResult) -> dict[str, float | None]:
    """The verifier's grade of the answer to each prompt, by prompt id."""
    return {s.prompt_id: result.verdicts.get(s.id) for s in result.samples}


def _scores(result: HeldoutResult) -> dict[str, float | None]:
    """The held-out judge's score of the answer to each prompt, by prompt id."""
    score_of = {j.sample_id: j.score for j in result.judgments}
    return {s.prompt_id: score_of.get(s.id) for s in result.samples}
