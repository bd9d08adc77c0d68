"""After-run decay figures: were the answers a run trained on right, and did its majority answers flip?

    autodidact decay runs/my-run

Read from a run's store after the run, with its tasks' verifiers: the
verifier grades what training already used and never reaches training. Per
task and training iteration:

- right / kept: how many of the samples selected for training the verifier
  passes (`kept_right`);
- majority flips: training prompts are drawn afresh each iteration (64 of 200
  per task by default), so among the prompts drawn in both iteration i-1 and
  i that have a majority answer both times, how many changed their majority,
  and how many of those went right -> wrong and wrong -> right by the verifier
  (`majority_flips`). The answers are read with the extractor of the task's
  self_consistency judge section, else `last_number`; a majority's verdict is
  that of the first sample that gave it.

- right / kept by floor (`autodidact decay RUN --floors 5,7.5`): among each
  training prompt's top-scored sample, how many clear each floor and how
  many of those the verifier passes. It asks, from the run's own samples,
  whether a higher `selection.min_score` would have kept answers that are
  more often right (with votes a score is the share agreeing x 10).

The run's monitor follows the same signal during training on held-out prompts
(`monitors.signal_decay`, docs/MONITORS.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autodidact.apps.eval_inputs import run_set
from autodidact.apps.export import open_run
from autodidact.judges.consistency import load_extractor
from autodidact.monitors.signal_decay import Flips, Vote, flip_counts, majority_vote, passes, vote_tasks
from autodidact.store import RunStore
from autodidact.tasks import Task
from autodidact.tasks.answering import verify_all

DEFAULT_EXTRACTOR = "last_number"


@dataclass(frozen=True)
class KeptRight:
    """Of one iteration's samples selected for training, how many the task's verifier passes."""

    iteration: int
    right: int
    kept: int


@dataclass(frozen=True)
class FloorKept:
    """Of one iteration's top-scored samples (one per prompt), how many clear `floor` and how many are right."""

    floor: float
    right: int
    kept: int


@dataclass(frozen=True)
class DecayFigures:
    """Per task: right / kept per training iteration, majority flips per pair of consecutive ones."""

    kept_right: dict[str, list[KeptRight]]
    flips: dict[str, list[tuple[int, Flips]]]  # (iteration i, flips from i-1 to i), from iteration 2 on
    extractors: dict[str, str]  # the extractor each task's answers were read with


def kept_right(store: RunStore, tasks: Mapping[str, Task], iterations: list[int]) -> dict[str, list[KeptRight]]:
    """task -> (right, kept) among each training iteration's selected samples, by the task's verifier."""
    prompts = {p.id: p for p in store.prompts(split="train")}
    out: dict[str, list[KeptRight]] = {name: [] for name in sorted({p.task for p in prompts.values()} & set(tasks))}
    for it in iterations:
        examples = [e for e in store.selection(it) if prompts[e.prompt_id].task in out]
        verdicts = verify_all(tasks, prompts, {e.sample_id: (e.prompt_id, e.completion) for e in examples})
        counts = {name: [0, 0] for name in out}
        for e in examples:
            cell = counts[prompts[e.prompt_id].task]
            cell[0] += passes(verdicts[e.sample_id]) is True
            cell[1] += 1
        for name, (right, kept) in counts.items():
            out[name].append(KeptRight(it, right, kept))
    return out


def training_votes(
    store: RunStore, tasks: Mapping[str, Task], extractors: Mapping[str, str], iteration: int
) -> dict[str, dict[str, Vote]]:
    """task -> prompt id -> the vote of the iteration's samples of that training prompt, with its verdict."""
    prompts = {p.id: p for p in store.prompts(split="train") if p.task in tasks}
    texts: dict[str, list[str]] = defaultdict(list)
    for sample in store.samples(iteration):
        if sample.prompt_id in prompts and sample.origin != "revision":  # what the model sampled, not a rewrite
            texts[sample.prompt_id].append(sample.text)
    votes = {
        pid: majority_vote(pid, group, load_extractor(extractors.get(prompts[pid].task, DEFAULT_EXTRACTOR)))
        for pid, group in texts.items()
    }
    answers = {pid: (pid, texts[pid][v.first]) for pid, v in votes.items() if v.first is not None}
    verdicts = verify_all(tasks, prompts, answers)
    out: dict[str, dict[str, Vote]] = defaultdict(dict)
    for pid, v in votes.items():
        out[prompts[pid].task][pid] = replace(v, right=passes(verdicts.get(pid)))
    return dict(out)


def majority_flips(
    store: RunStore, tasks: Mapping[str, Task], extractors: Mapping[str, str], iterations: list[int]
) -> dict[str, list[tuple[int, Flips]]]:
    """task -> (i, majority flips from training iteration i-1 to i) over the prompts drawn in both."""
    out: dict[str, list[tuple[int, Flips]]] = defaultdict(list)
    previous: dict[str, dict[str, Vote]] = {}
    for it in iterations:
        current = training_votes(store, tasks, extractors, it)
        if previous:
            for name in sorted(tasks):
                out[name].append((it, flip_counts(previous.get(name, {}), current.get(name, {}))))
        previous = current
    return dict(out)


def right_by_floor(
    store: RunStore, tasks: Mapping[str, Task], iterations: list[int], floors: list[float]
) -> dict[str, list[tuple[int, list[FloorKept]]]]:
    """task -> (iteration, per floor: right / kept) among each training prompt's top-scored sample.

    A sample's score is its last stored judgment (failed judgments are left out); the top sample of a prompt
    is the first with the highest score.
    """
    prompts = {p.id: p for p in store.prompts(split="train") if p.task in tasks}
    out: dict[str, list[tuple[int, list[FloorKept]]]] = {name: [] for name in sorted({p.task for p in prompts.values()})}
    for it in iterations:
        texts = {s.id: (s.prompt_id, s.text) for s in store.samples(it) if s.prompt_id in prompts}
        scores = {j.sample_id: j.score for j in store.judgments(it) if j.sample_id in texts and j.score is not None}
        top: dict[str, tuple[float, str]] = {}
        for sample_id, score in scores.items():
            pid = texts[sample_id][0]
            if pid not in top or score > top[pid][0]:
                top[pid] = (score, sample_id)
        verdicts = verify_all(tasks, prompts, {sid: texts[sid] for _, sid in top.values()})
        for name in out:
            picked = [(score, sid) for pid, (score, sid) in top.items() if prompts[pid].task == name]
            kept = {floor: [sid for score, sid in picked if score >= floor] for floor in floors}
            counts = [FloorKept(f, sum(passes(verdicts[sid]) is True for sid in ids), len(ids)) for f, ids in kept.items()]
            out[name].append((it, counts))
    return out


def floor_lines(by_floor: dict[str, list[tuple[int, list[FloorKept]]]]) -> list[str]:
    """'arithmetic: right / kept by floor, iteration 3: >= 5 18 / 61, >= 7.5 17 / 48', one line per task and iteration."""
    return [
        f"{task}: right / kept by floor, iteration {it}: "
        + ", ".join(f">= {c.floor:g} {c.right} / {c.kept}" for c in counts)
        for task, rows in by_floor.items()
        for it, counts in rows
    ]


def _graded_run(run_dir: Path) -> tuple[dict[str, Task], Any, RunStore]:
    """The tasks of the run's saved config (no engine: they grade, never answer), its config and its store."""
    tasks: dict[str, Task] = run_set(str(run_dir), []).tasks(None, None)
    config, store = open_run(Path(run_dir))
    return tasks, config, store


def _training_iterations(store: RunStore) -> list[int]:
    """The evaluated training iterations (iteration 0 is the base model)."""
    return sorted({row["iteration"] for row in store.metrics()} - {0})


def floor_figures(run_dir: Path, floors: list[float]) -> list[str]:
    """The right-by-floor lines of the run in `run_dir` (graded by the tasks of its saved config)."""
    tasks, _, store = _graded_run(run_dir)
    with store:
        return floor_lines(right_by_floor(store, tasks, _training_iterations(store), floors))


def decay_figures(run_dir: Path) -> DecayFigures:
    """The after-run decay figures of the run in `run_dir` (graded by the tasks of its saved config)."""
    tasks, config, store = _graded_run(run_dir)
    voting = vote_tasks(config)
    extractors = {name: voting.get(name, DEFAULT_EXTRACTOR) for name in tasks}
    with store:
        iterations = _training_iterations(store)
        return DecayFigures(
            kept_right(store, tasks, iterations), majority_flips(store, tasks, extractors, iterations), extractors
        )


def decay_lines(figures: DecayFigures, name: str = "") -> list[str]:
    """The figures as plain lines, one per task and figure: 'NAME task: right / kept 11 / 16, 17 / 34, ...'."""
    lead = f"{name} " if name else ""
    lines = []
    for task, counts in figures.kept_right.items():
        lines.append(f"{lead}{task}: right / kept " + ", ".join(f"{c.right} / {c.kept}" for c in counts))
    for task, flips in figures.flips.items():
        cells = ", ".join(
            f"{i - 1}->{i}: {f.flipped} of {f.shared} (right->wrong {f.right_to_wrong}, wrong->right {f.wrong_to_right})"
            for i, f in flips
        )
        lines.append(f"{lead}{task}: majority flips ({figures.extractors[task]}) {cells}")
    return lines


__all__ = [
    "DecayFigures",
    "FloorKept",
    "KeptRight",
    "decay_figures",
    "decay_lines",
    "floor_figures",
    "floor_lines",
    "kept_right",
    "majority_flips",
    "right_by_floor",
]
