"""`autodidact screen`: score one set of base-model samples with every label-free signal, against the verifier.

Samples once from the base model (the first `prompts` training prompts of each task, as a run builds
them; `samples` each at the config's generation settings), grades every sample with its task's
verifier, then scores the same samples with each signal of `screen_signals.SIGNALS` on one in-process
engine of the base policy (an ensemble of signals already screened is combined from their scores, as
the ensemble judge combines them, at no further pass). Per task and signal it reports the AUC against the verifier, the top-1
pick's precision against a random pick's, coverage, failed judgments, and the cost in model passes per
sample and wall seconds; plus the ceiling (prompts some sample solves, the sample pass rate).

The verdicts are the screen's labels only: a signal sees each prompt without its reference.

Everything is cached under the output folder, so a rerun (more signals, a crash) redoes nothing:
`samples.json` (samples and verdicts) and `signals/NAME.json` (a signal's scores and costs, written
as soon as the signal finishes a task). Samples made with other settings are an error, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from autodidact.apps.screen_metrics import Ceiling, PassCounter, SignalMetrics, ceiling, signal_metrics
from autodidact.apps.screen_signals import SIGNALS, section_methods, signal_names
from autodidact.config import RunConfig, judge_config
from autodidact.engines import Engine, SamplingParams
from autodidact.errors import AutodidactError, file_error
from autodidact.judges import JUDGES, JudgeItem, build_judge
from autodidact.judges.ensemble import combine_scores
from autodidact.records import Prompt, Sample
from autodidact.tasks import Task, build_tasks
from autodidact.tasks.answering import answer, verify_all

SAMPLES_FILE, SIGNALS_DIR = "samples.json", "signals"
log = logging.getLogger(__name__)


@dataclass
class ScreenResult:
    """What a screen found: per task its ceiling and each signal's row, and the signals skipped (why)."""

    settings: dict[str, Any]
    ceilings: dict[str, Ceiling]
    rows: dict[str, dict[str, SignalMetrics]]  # task -> signal -> metrics, in the order screened
    skipped: dict[str, str] = field(default_factory=dict)
    markdown: str = ""

    def to_json(self) -> dict[str, Any]:
        tasks = {
            task: {"ceiling": asdict(self.ceilings[task]),
                   "signals": {name: asdict(m) | {"coverage": m.coverage, "passes_per_sample": m.passes_per_sample}
                               for name, m in rows.items()}}
            for task, rows in self.rows.items()
        }  # fmt: skip
        return {"settings": self.settings, "tasks": tasks, "skipped": self.skipped}


def screen(
    config: RunConfig,
    prompts: int = 32,
    samples: int = 8,
    signals: Sequence[str] = (),
    out_dir: Path = Path("runs/screen"),
    note: Callable[[str], None] = log.warning,
) -> ScreenResult:
    """Sample the base model once, grade, score with every signal; write OUT/screen.md and OUT/screen.json.

    Args:
        config: the run config (model, tasks, seed, generation settings).
        prompts: training prompts per task (the first ones of `task.build`).
        samples: samples per prompt.
        signals: names from `SIGNALS` (empty: all).
        out_dir: the cache and the results.
        note: where a skipped signal is said.

    Raises:
        AutodidactError: an unknown signal, or an output folder holding samples made with other settings.
    """
    from autodidact.engines import TransformersEngine
    from autodidact.training import load_policy

    names = signal_names(signals)
    settings = screen_settings(config, prompts, samples)
    cached = _read_samples(out_dir, settings)  # before the model loads: a mismatch is said at once
    policy, tokenizer = load_policy(config, None)
    engine = TransformersEngine(
        policy, tokenizer, batch_size=config.generation.batch_size, score_batch_size=config.judge.batch_size
    )
    tasks = _tasks(config, engine)
    drawn = {name: task.build(config.tasks.train_size, config.tasks.heldout_size, config.seed)[0][:prompts]
             for name, task in tasks.items()}  # fmt: skip
    by_id = {p.id: p for ps in drawn.values() for p in ps}
    if cached is None:
        cached = _sample(engine, tasks, config, by_id, samples)
        _write_json(out_dir / SAMPLES_FILE, {"settings": settings} | cached)
    elif set(cached["prompt_ids"]) != set(by_id):
        raise AutodidactError(f"{out_dir / SAMPLES_FILE} was sampled on other prompts than the tasks build now; "
                              "use another --out or delete that folder.")  # fmt: skip
    all_samples = [Sample(**{k: v for k, v in row.items() if k != "verdict"}) for row in cached["samples"]]
    verdicts = {row["id"]: row["verdict"] for row in cached["samples"]}
    per_task = {name: [s for s in all_samples if by_id[s.prompt_id].task == name] for name in tasks}
    # A signal's cached scores hold for exactly these samples: keyed by their digest, not by the settings.
    digest = hashlib.sha256(json.dumps(cached["samples"], sort_keys=True).encode()).hexdigest()
    result = ScreenResult(settings, {t: ceiling(ss, verdicts) for t, ss in per_task.items()}, {t: {} for t in tasks})
    done: dict[str, dict[str, tuple[dict[str, float | None], int, float]]] = {}
    for name in names:
        scored = _combined(SIGNALS[name], done) or _score_signal(name, engine, tasks, by_id, per_task, out_dir, digest, note)
        if isinstance(scored, str):
            result.skipped[name] = scored
            continue
        done[name] = scored
        for task, (scores, passes, seconds) in scored.items():
            result.rows[task][name] = signal_metrics(per_task[task], scores, verdicts, passes, seconds)
    result.markdown = screen_markdown(result)
    _write_text(out_dir / "screen.md", result.markdown)
    _write_json(out_dir / "screen.json", result.to_json())
    return result


def screen_settings(config: RunConfig, prompts: int, samples: int) -> dict[str, Any]:
    """What the samples depend on; cached samples made with other settings are not reused."""
    g = config.generation
    return {
        "model": config.model.model_dump(mode="json"),
        "tasks": config.tasks.model_dump(mode="json"),
        "seed": config.seed,
        "prompts": prompts,
        "samples": samples,
        "temperature": g.temperature_at(1),
        "top_p": g.top_p,
        "max_new_tokens": g.max_new_tokens,
    }


def _tasks(config: RunConfig, engine: Engine) -> dict[str, Task]:
    """The run's tasks; sources that write or search prompts get the embedder a run would give them."""
    from autodidact.loop.context import source_embedder

    return build_tasks(config.tasks, engine, source_embedder(config), engine)


def _sample(engine: Engine, tasks: dict[str, Task], config: RunConfig, by_id: dict[str, Prompt], n: int) -> dict:
    """`n` samples per prompt at the first iteration's settings (its seed too), each with its verdict."""
    s = config.generation
    params = SamplingParams(n, s.temperature_at(1), s.top_p, s.max_new_tokens, seed=config.seed * 1000 + 1)
    prompts = list(by_id.values())
    outputs = answer(engine, tasks, prompts, params, desc="screen: sampling the base model")
    rows = [
        {"id": f"{p.id}-{k}", "prompt_id": p.id, "iteration": 0, "index": k, "text": c.text, "num_tokens": c.num_tokens}
        for p, completions in zip(prompts, outputs, strict=True)
        for k, c in enumerate(completions)
    ]
    verdicts = verify_all(tasks, by_id, {r["id"]: (r["prompt_id"], r["text"]) for r in rows})
    return {"prompt_ids": list(by_id), "samples": [r | {"verdict": verdicts[r["id"]]} for r in rows]}


def _read_samples(out_dir: Path, settings: dict[str, Any]) -> dict | None:
    path = out_dir / SAMPLES_FILE
    if not path.is_file():
        return None
    cached = json.loads(path.read_text(encoding="utf-8"))
    if cached.get("settings") != settings:
        changed = sorted(k for k in settings if cached.get("settings", {}).get(k) != settings[k])
        raise AutodidactError(
            f"{path} holds samples made with other settings ({', '.join(changed) or 'format'}); "
            "use another --out or delete that folder to sample again."
        )
    return cached


def _combined(section: dict[str, Any], done: dict[str, dict]) -> dict[str, tuple[dict, int, float]] | None:
    """An ensemble whose members were all screened already, combined from their scores as the ensemble judge
    combines them (`combine_scores` over the members that did not fail); its cost is the members' summed.
    None when the section is not such an ensemble (it is then scored by its own judge)."""
    if section.get("method") != "ensemble" or section.get("personas"):
        return None
    by_section = {json.dumps(SIGNALS[n], sort_keys=True): n for n in done}
    members = [by_section.get(json.dumps(m, sort_keys=True)) for m in section["members"]]
    if not members or None in members:
        return None
    how = section.get("combine", "mean")
    out = {}
    for task in set.intersection(*(set(done[m]) for m in members)):
        parts = [done[m][task] for m in members]
        scores = {}
        for sample_id in parts[0][0]:
            member_scores = [p[0].get(sample_id) for p in parts]
            valid = [x for x in member_scores if x is not None]
            scores[sample_id] = combine_scores(valid, how) if valid else None
        out[task] = (scores, sum(p[1] for p in parts), sum(p[2] for p in parts))
    return out


def _score_signal(
    name: str, engine: Engine, tasks: dict[str, Task], by_id: dict[str, Prompt], per_task: dict[str, list[Sample]],
    out_dir: Path, digest: str, note: Callable[[str], None],
) -> dict[str, tuple[dict[str, float | None], int, float]] | str:
    """task -> (scores, model passes, seconds) of one signal, from its cache or scored now; a string: why skipped."""
    section = SIGNALS[name]
    missing = sorted(set(section_methods(section)) - set(JUDGES))
    if missing:
        reason = f"judge method {', '.join(missing)} is not registered"
        note(f"signal {name} skipped: {reason}")
        return reason
    path = out_dir / SIGNALS_DIR / f"{name}.json"
    cached = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if cached.get("samples_digest") != digest or cached.get("section") != section:
        cached = {"samples_digest": digest, "section": section, "tasks": {}}
    counter = PassCounter(engine)
    try:
        judge = build_judge(judge_config(**section), counter, tasks)
        for task, task_samples in per_task.items():
            if task in cached["tasks"]:
                continue
            log.info("screen: scoring %d %s samples with %s", len(task_samples), task, name)
            # Without its reference: the verdicts are the screen's labels, never a signal's input.
            items = [JudgeItem(s.id, replace(by_id[s.prompt_id], reference=None), s.text) for s in task_samples]
            counter.passes, start = 0, time.perf_counter()
            judgments = judge.judge(items).judgments
            seconds = time.perf_counter() - start
            scores = {j.sample_id: j.score for j in judgments}
            cached["tasks"][task] = {"scores": scores, "passes": counter.passes, "seconds": seconds}
            _write_json(path, cached)
    except AutodidactError as exc:
        note(f"signal {name} skipped: {exc}")
        return str(exc)
    return {t: (c["scores"], c["passes"], c["seconds"]) for t, c in cached["tasks"].items() if t in per_task}


def screen_markdown(result: ScreenResult) -> str:
    """One table per task, its ceiling line above it, and the signals skipped."""
    s = result.settings
    lines = [
        f"Screen of label-free signals: {s['prompts']} training prompts per task x {s['samples']} samples of the "
        f"base model ({s['model']['name']}, seed {s['seed']}, temperature {s['temperature']:g}, top_p {s['top_p']:g}, "
        f"{s['max_new_tokens']} new tokens), graded by each task's verifier. AUC: how well the signal's scores "
        "separate passing from failing samples, pooled over the task (0.5 = chance); within-prompt AUC: the same "
        "among each prompt's own samples, averaged over the prompts with both (what selection ranks). Top-1 %: "
        "the prompts whose top-scored sample passes; random %: a random valid sample's chance on the same "
        "prompts. Coverage: prompts with a pick. Passes/sample: model rows the signal ran per sample.",
    ]
    for task, rows in result.rows.items():
        c = result.ceilings[task]
        lines += ["", f"### {task}", "",
                  f"Ceiling: some sample passes on {_pct(c.any_pass)}% of {c.prompts} prompts; "
                  f"{_pct(c.sample_pass_rate)}% of samples pass.", "",
                  "| signal | AUC | within-prompt AUC | top-1 % | random % | top-1 - random | coverage | failed "
                  "| passes/sample | seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, m in rows.items():
            gain = None if m.top1 is None or m.random_top1 is None else m.top1 - m.random_top1
            lines.append(
                f"| {name} | {_num(m.auc)} | {_num(m.within_auc)} | {_pct(m.top1)} | {_pct(m.random_top1)} | "
                f"{_pct(gain)} | {m.covered}/{m.prompts} | {m.failed}/{m.samples} | {m.passes_per_sample:.2f} | "
                f"{m.seconds:.1f} |"
            )
    if result.skipped:
        lines += ["", "Skipped: " + "; ".join(f"{name} ({why})" for name, why in result.skipped.items()) + "."]
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _write_text(path: Path, text: str) -> None:
    """Write whole or not at all (a temporary name renamed), so a killed screen leaves no half cache."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise file_error(exc, "choose another --out", path) from None


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1))
