"""The recipe study: which label-free recipe improves the bundled model most on held-out data.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/study.py --recipes route_big,random_big --seeds 0,1,2,3,4 \\
        [--out runs/study] [--records DIR] [--iterations 3] [--table-only] [--partial] [--kept]

Each recipe is `configs/default.yaml` plus a few `--set` overrides (RECIPES
below); each (recipe, seed) is one full run in `OUT/RECIPE-sSEED`. A finished
run is reused, an unfinished one resumed, so the study can be stopped and
continued, and a table can be made from whatever has finished
(`--table-only`).

The gain of a run is the held-out verifier pass rate at its last iteration
minus the base model's (iteration 0), averaged over the built-in tasks: the
last iteration, not the best, since picking the best by the held-out metric
would overstate it. Every held-out prompt is answered by both models, so the
difference is paired: per (seed, task) the mean of d = pass_after - pass_before
over its prompts, with variance var(d) / n. The recipe's gain is the mean over
seeds and tasks, and its 95% interval is normal around it with the variance
summed over the (seed, task) cells (prompt sampling noise, which dominates
with 48 prompts a task). The spread across seeds is shown apart (min and max
seed gain): with 3 seeds a t-interval over seeds is too wide to say anything.

A run directory holds checkpoints (tens of MB) and is not kept in the
repository; `--records DIR` writes, for every finished run, DIR/RECIPE-sSEED.json:
its graded held-out answers and its decay lines, a few tens of KB. Tables
count a run whose directory is gone by its record, so a study spread over
machines or sessions only loses the run that was going when it stopped
(issue 20's records: docs/results/study20/).

Held-out sets: `heldout` (the training templates' phrasing, new problems) and
`heldout_paraphrase` (phrasings training never used). A run made before the
loop evaluated the paraphrased set gets it post hoc: the same prompts the loop
would have made, answered by the base model and the last checkpoint.

Training signals: the recipes other than `verifier` use only the model's own
outputs (its judgments, votes and critiques); `verifier` judges with the task's
verifier and is the supervised upper bound, reported beside them.

The control arm: `random_big` trains on a uniformly random valid sample per
prompt with the same budget and training (`judge.method: random`). With it in
`--recipes`, every other recipe's gain over it, paired per held-out prompt on
the seeds both have, is printed per iteration and task
(`autodidact.apps.control`): what self-evaluation adds over training on the
model's own samples. Seeds run outermost, so each seed's arms finish together.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from statistics import fmean

from autodidact.apps import control

ROOT = Path(__file__).resolve().parents[1]

# The budget and judge of the first default config (before this study): 24 prompts a task per iteration,
# top 1 of 4 samples by the direct judge, one LoRA epoch at 2e-4. The "small" recipes start from it.
SMALL = [
    "tasks.prompts_per_iteration=24",
    "generation.samples_per_prompt=4",
    "training.epochs=1",
    "training.learning_rate=0.0002",
    "selection.min_score=null",
    "judge.tasks={}",
]

# name -> (overrides of configs/default.yaml, what it tests). configs/default.yaml is `route_big`, the
# study's best label-free recipe: 64 prompts a task, 8 samples, two LoRA epochs at 5e-4, arithmetic
# judged by agreement among its answers, a random sample on instructions (issue 20: no signal beat it there).
RECIPES: dict[str, tuple[list[str], str]] = {
    "route_big": ([], "configs/default.yaml: votes on arithmetic (kept when >= half agree), a random sample on instructions"),
    "route_big_agree5": (
        ["selection.min_score=6.25"],
        "route_big with a higher floor: arithmetic kept when >= 5 of 8 answers agree (the floor also drops "
        "the 2% of instruction prompts whose 8 random scores are all below 6.25)",
    ),
    "route_big_rising": (["selection.min_score_schedule=[5,6.25,7.5]"], "route_big with a floor rising per iteration"),
    "route_big_curriculum": (["selection.min_score_schedule=[7.5,6.25,5]"], "route_big, confident prompts first"),
    "route_big_replay": (["selection.replay_base=true"], "route_big, also training on iteration 1's examples"),
    "verifier_big": (
        ["judge.tasks={}", "judge.method=verifier"],
        "the default budget, the verifier as judge, passing samples only: the supervised upper bound",
    ),
    "random_big": (
        ["judge.tasks={}", "judge.method=random", "selection.min_score=null"],
        "the control arm: the default budget and training, a uniformly random valid sample per prompt",
    ),
    "route_judged_instructions": (
        ["judge.tasks.instructions={method: direct}"],
        "the default before issue 20: votes on arithmetic, the direct judge on instructions (what judging "
        "instructions adds over the default's random pick there)",
    ),
    "big": (["judge.tasks={}"], "the default budget, the direct judge on every task"),
    "small": (SMALL, "the first default: direct judge, top 1 of 4 samples, 24 prompts a task, one epoch at 2e-4"),
    "small_verifier": ([*SMALL, "judge.method=verifier"], "the first default's budget, the verifier as judge"),
    "small_rubric": ([*SMALL, "judge.method=rubric"], "chain-of-thought rubric, one criterion per question"),
    "small_self_consistency": ([*SMALL, "judge.method=self_consistency"], "majority vote as pseudo-label"),
    "small_pairwise": ([*SMALL, "judge.method=pairwise"], "pairwise comparison in both orders, Bradley-Terry"),
    "small_dpo": ([*SMALL, "training.method=dpo"], "best-vs-worst pairs of the direct judge, DPO"),
    "small_t1.0": ([*SMALL, "generation.temperature=1.0"], "sampling temperature 1.0 instead of 0.8"),
    "small_r64": ([*SMALL, "training.lora_r=64", "training.lora_alpha=128"], "LoRA rank 64 instead of 16"),
    "small_length_band": ([*SMALL, "selection.length_band=0.5"], "the shortest sample within 0.5 of the best score"),
}
SPLITS = control.SPLITS
CONTROL = "random_big"  # every other recipe's gain over it is reported (autodidact.apps.control)


def run_one(recipe: str, seed: int, out: Path, iterations: int) -> Path:
    """Run (or resume, or reuse) one (recipe, seed); returns the run directory."""
    import autodidact
    from autodidact.config import load_config
    from autodidact.loop import CONFIG_FILE

    name = f"{recipe}-s{seed}"
    run_dir = out / name
    if (run_dir / CONFIG_FILE).is_file():
        autodidact.resume(run_dir)  # a finished run returns at once, without loading the model
        return run_dir
    overrides = [*RECIPES[recipe][0], f"seed={seed}", f"name={name}", f"output_dir={out}"]
    overrides += [f"stopping.max_iterations={iterations}", f"stopping.patience={iterations}"]
    autodidact.run(load_config(ROOT / "configs" / "default.yaml", overrides))
    return run_dir


def paraphrase_posthoc(run_dir: Path) -> dict[int, dict[str, dict[str, float]]]:
    """For a run made before the paraphrased set existed: answer it now with the base model and the last
    checkpoint (greedy, the run's evaluation settings) and verify. iteration -> task -> prompt id -> verdict.

    The prompts are exactly the ones the loop would have made (`build_paraphrased` with the run's seed and
    sizes); the answers are cached in RUN/paraphrase_posthoc.json.
    """
    from autodidact.config import load_config
    from autodidact.engines import TransformersEngine
    from autodidact.evaluation import evaluate_heldout
    from autodidact.loop import CONFIG_FILE, STORE_FILE
    from autodidact.store import RunStore
    from autodidact.tasks import get_task
    from autodidact.training import load_policy

    cache = run_dir / "paraphrase_posthoc.json"
    if cache.is_file():
        raw = json.loads(cache.read_text(encoding="utf-8"))
        return {int(it): tasks for it, tasks in raw.items()}
    config = load_config(run_dir / CONFIG_FILE)
    t = config.tasks
    size = t.paraphrase_heldout_size if t.paraphrase_heldout_size is not None else t.heldout_size
    tasks = {name: get_task(name) for name in t.names}
    prompts = [p for task in tasks.values() for p in task.build_paraphrased(t.train_size, t.heldout_size, size, config.seed)]
    with RunStore(run_dir / STORE_FILE) as store:
        last = store.last_checkpoint()
    out: dict[int, dict[str, dict[str, float]]] = {}
    for it, checkpoint in ((0, None), (last[0], last[1]) if last else (0, None)):
        policy, tokenizer = load_policy(config, checkpoint)
        engine = TransformersEngine(policy, tokenizer, batch_size=config.generation.batch_size)
        result = evaluate_heldout(engine, None, tasks, prompts, it, config.evaluation.max_new_tokens)
        by_id = {p.id: p for p in prompts}
        cell: dict[str, dict[str, float]] = defaultdict(dict)
        for sample in result.samples:
            prompt = by_id[sample.prompt_id]
            verdict = tasks[prompt.task].verify(prompt, sample.text)
            if verdict is not None:
                cell[prompt.task][prompt.id] = float(verdict)
        out[it] = dict(cell)
    cache.write_text(json.dumps(out), encoding="utf-8")
    return out


Verdicts = dict[str, dict[int, dict[str, dict[str, float]]]]  # split -> iteration -> task -> prompt id -> verdict


def record_file(records: Path | None, run_dir: Path) -> Path | None:
    """Where the record of the run in `run_dir` is kept, or None without a records directory."""
    return records / f"{run_dir.name}.json" if records else None


def read_record(records: Path | None, run_dir: Path) -> dict | None:
    """The saved record of a run whose directory is gone (iterations back to int keys), or None."""
    path = record_file(records, run_dir)
    if path is None or started(run_dir) or not path.is_file():
        return None  # a run directory that is here is always read, never its possibly older record
    record = json.loads(path.read_text(encoding="utf-8"))
    record["verdicts"] = {
        split: {int(it): tasks for it, tasks in by_it.items()} for split, by_it in record["verdicts"].items()
    }
    return record


def save_record(records: Path, run_dir: Path) -> None:
    """Write a finished run's graded held-out answers and decay lines to RECORDS/NAME.json."""
    from autodidact.apps.decay import decay_figures, decay_lines

    record = {"verdicts": verdicts(run_dir, None), "decay": decay_lines(decay_figures(run_dir), run_dir.name)}
    records.mkdir(parents=True, exist_ok=True)
    record_file(records, run_dir).write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")


def verdicts(run_dir: Path, records: Path | None) -> Verdicts:
    """split -> iteration -> task -> prompt id -> verifier verdict of the held-out answer (the run's store,
    else its record)."""
    record = read_record(records, run_dir)
    if record is not None:
        return record["verdicts"]
    out = control.heldout_verdicts(run_dir)
    if "heldout_paraphrase" not in out:
        out["heldout_paraphrase"] = paraphrase_posthoc(run_dir)
    return out


def paired_gain(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> tuple[float, float]:
    """Mean over tasks of the paired pass-rate difference, and its variance (prompt sampling)."""
    cells = [c for task in sorted(before) if (c := control.paired_cell(after.get(task, {}), before[task])) is not None]
    k = len(cells)
    return fmean(m for m, _ in cells), sum(v for _, v in cells) / (k * k)


def summarize(recipe: str, runs: list[Path], records: Path | None = None) -> dict:
    """One recipe's row per split: pass rate by iteration, the gain and its 95% interval, the per-seed gains."""
    rows = {}
    per_run = [verdicts(r, records) for r in runs]
    for split in SPLITS:
        found = [v[split] for v in per_run if split in v]
        if not found:
            continue
        last = min(max(v) for v in found)
        by_iter = {
            it: fmean(fmean(fmean(p.values()) for p in v[it].values()) for v in found)
            for it in range(last + 1)
            if all(it in v for v in found)  # a post-hoc paraphrase evaluation has iterations 0 and last only
        }
        gains = [paired_gain(v[0], v[last]) for v in found]
        gain = fmean(g for g, _ in gains)
        half = 1.96 * math.sqrt(sum(var for _, var in gains)) / len(gains)
        per_task = defaultdict(list)
        for v in found:
            for task in v[0]:
                ids = v[0][task].keys() & v[last].get(task, {}).keys()
                per_task[task].append(fmean(v[last][task][i] - v[0][task][i] for i in ids))
        rows[split] = {
            "seeds": len(found),
            "pass_by_iteration": by_iter,
            "gain": gain,
            "low": gain - half,
            "high": gain + half,
            "seed_gains": [g for g, _ in gains],
            "task_gains": {t: fmean(g) for t, g in per_task.items()},
            "last_iteration": last,
        }
    return {"recipe": recipe, "what": RECIPES[recipe][1], "splits": rows}


def markdown(rows: list[dict], split: str) -> str:
    """The results table of one held-out split, in points (pass rate x 100)."""
    pts = lambda x: f"{100 * x:+.1f}"  # noqa: E731
    lines = [
        "| recipe | seeds | base % | iter 1 | iter 2 | iter 3 | gain, points [95% CI] | per seed | per task |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        r = row["splits"].get(split)
        if r is None:
            continue
        it = r["pass_by_iteration"]
        cells = [f"{100 * it[i]:.1f}" if i in it else "-" for i in range(4)]
        tasks = ", ".join(f"{t} {pts(g)}" for t, g in sorted(r["task_gains"].items()))
        lines.append(
            f"| {row['recipe']} | {r['seeds']} | {' | '.join(cells)} | {pts(r['gain'])} [{pts(r['low'])}, "
            f"{pts(r['high'])}] | {' / '.join(pts(g) for g in r['seed_gains'])} | {tasks} |"
        )
    return "\n".join(lines)


def finished(run_dir: Path) -> bool:
    """Whether the run in `run_dir` has ended (a stop reason is stored); a run still going is left out."""
    from autodidact.loop import STORE_FILE
    from autodidact.store import RunStore

    if not (run_dir / STORE_FILE).is_file():
        return False
    with RunStore(run_dir / STORE_FILE) as store:
        return bool(store.get_meta("stop_reason"))


def started(run_dir: Path) -> bool:
    """Whether `run_dir` holds a run that has evaluated at least the base model (finished or not)."""
    return (run_dir / "run.sqlite").is_file()


def control_tables(
    recipes: list[str], seeds: list[int], out: Path, counted, arm: str = CONTROL, records: Path | None = None
) -> dict[str, dict]:
    """split -> recipe -> each other recipe's gain over the control `arm` (`control.over_control`)."""
    if arm not in recipes:
        return {}
    by_recipe = {
        recipe: {s: verdicts(out / f"{recipe}-s{s}", records) for s in seeds if counted(out / f"{recipe}-s{s}")}
        for recipe in recipes
    }
    tables = {}
    for split in SPLITS:
        table = {r: control.over_control(by_recipe[r], by_recipe[arm], split) for r in recipes if r != arm}
        if any(table.values()):
            tables[split] = table
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="route_big,verifier_big", help=f"comma-separated, from: {', '.join(RECIPES)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "study")
    parser.add_argument(
        "--records", type=Path, default=None, help="keep each finished run's graded answers here as RECIPE-sSEED.json "
        "(issue 20: docs/results/study20); tables count a run whose directory is gone by its record",
    )
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--table-only", action="store_true", help="no new runs: the table of the finished ones")
    parser.add_argument(
        "--control", default=CONTROL, help="the recipe every other one is compared with, paired per prompt "
        "(e.g. route_big against route_judged_instructions: what judging instructions adds)",
    )
    parser.add_argument(
        "--partial", action="store_true", help="tables also count unfinished runs, at the iterations they evaluated"
    )
    parser.add_argument(
        "--kept",
        action="store_true",
        help="also print, per run, task and iteration, right / kept among the samples trained on and majority flips",
    )
    args = parser.parse_args()
    recipes = args.recipes.split(",")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    if not args.table_only:
        for seed in seeds:  # seeds outermost: each seed's recipes (a judged arm and its control) finish together
            for recipe in recipes:
                start = time.perf_counter()
                run_one(recipe, seed, args.out, args.iterations)
                timings[f"{recipe}-s{seed}"] = round(time.perf_counter() - start, 1)
                print(f"{recipe} seed {seed}: {timings[f'{recipe}-s{seed}']} s", flush=True)
                if args.records and finished(args.out / f"{recipe}-s{seed}"):  # kept before the next run starts
                    save_record(args.records, args.out / f"{recipe}-s{seed}")
    if args.records and args.table_only:  # finished runs made before --records was given (a run above saved its own)
        for name in (f"{recipe}-s{seed}" for seed in seeds for recipe in recipes):
            if finished(args.out / name):
                save_record(args.records, args.out / name)

    def counted(run_dir: Path) -> bool:  # a run directory that is here, else a saved (finished) run's record
        if started(run_dir):
            return args.partial or finished(run_dir)
        return read_record(args.records, run_dir) is not None

    rows = []
    for recipe in recipes:
        runs = [args.out / f"{recipe}-s{s}" for s in seeds if counted(args.out / f"{recipe}-s{s}")]
        if runs:
            rows.append(summarize(recipe, runs, args.records))
    for split in SPLITS:
        if any(split in r["splits"] for r in rows):
            print(f"\n### {split}\n\n{markdown(rows, split)}")
    over_random = control_tables(recipes, seeds, args.out, counted, args.control, args.records)
    for split, table in over_random.items():
        print(f"\n### {split}: each recipe over {args.control}\n\n{control.markdown(table, split)}")
    if args.kept:
        from autodidact.apps.decay import decay_figures, decay_lines  # also `autodidact decay RUN_DIR`

        print("\n### right / kept among the samples trained on, and majority flips, by the verifier after the run\n")
        for row in rows:
            for seed in seeds:
                run_dir = args.out / f"{row['recipe']}-s{seed}"
                if (record := read_record(args.records, run_dir)) is not None:
                    print("\n".join(record["decay"]))
                elif counted(run_dir):
                    print("\n".join(decay_lines(decay_figures(run_dir), run_dir.name)))
    result = {"rows": rows, "over_random": over_random, "seconds": timings}
    (args.out / "study.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
