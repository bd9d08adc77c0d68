"""The documents study: does the bundled model learn the Apollo 13 report? (issue 21)

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/documents_study.py --seeds 0,1,2 \\
        [--config examples/apollo13/config.yaml] [--out runs/documents] [--table-only] [--json FILE]

Each seed is one run of the config in OUT/NAME-sSEED (resumed when unfinished, reused when finished), so
the study can be stopped and continued. The seed changes the held-out chunks, the model's wordings, the
samples and the training order.

Per iteration it prints both evaluations, averaged over seeds:
- open-book reading (split heldout): questions about held-out chunks, answered with the search tool;
- closed-book recall (split heldout_paraphrase): a reworded question about each trained fact, from memory;
and each one's gain over the base model (iteration 0), paired per question within a seed, with a normal 95%
interval over the (seed) cells (`autodidact.apps.control.interval`). Answers are graded again from the store
by the span rule (`grading.span_verdict`), as the loop graded them. It also prints the question counts and each
run's wall-clock seconds (from writing its config to its last write, question writing included), since the
issue bounds the example at 20 minutes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import fmean
from types import SimpleNamespace

from autodidact.apps.control import interval, paired_cell, points

ROOT = Path(__file__).resolve().parents[1]
BOOKS = {"heldout": "open-book reading", "heldout_paraphrase": "closed-book recall"}


def run_one(config: Path, seed: int, out: Path) -> Path:
    """Run (or resume, or reuse) one seed of `config`; returns the run directory."""
    import autodidact
    from autodidact.config import load_config
    from autodidact.loop import CONFIG_FILE

    name = f"{config.parent.name}-s{seed}"
    run_dir = out / name
    if (run_dir / CONFIG_FILE).is_file():
        autodidact.resume(run_dir)  # a finished run returns at once, without loading the model
    else:
        autodidact.run(load_config(config, [f"seed={seed}", f"name={name}", f"output_dir={out}"]))
    return run_dir


def verdicts(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    """split -> iteration -> question id -> 1.0 / 0.0: every stored held-out answer graded again by span match.

    `control.heldout_verdicts` reads and grades the store; a documents task is graded by `grading.span_verdict`,
    the rule the loop used, so no model is loaded.
    """
    from autodidact.apps.control import heldout_verdicts
    from autodidact.config import load_config
    from autodidact.loop import CONFIG_FILE
    from autodidact.tasks.documents.grading import span_verdict

    sources = load_config(run_dir / CONFIG_FILE).tasks.sources
    span_grader = SimpleNamespace(verify=span_verdict)  # what heldout_verdicts calls on a task
    graded = heldout_verdicts(run_dir, {s.name: span_grader for s in sources if s.type == "documents"})
    return {split: {it: {q: v for by_task in tasks.values() for q, v in by_task.items()} for it, tasks in its.items()}
            for split, its in graded.items()}  # fmt: skip


def trained_recall(run_dir: Path) -> dict[int, dict[str, float]]:
    """Closed-book recall on the facts training had seen by each iteration: what memorising could show.

    A recall question's fact counts as trained by iteration i when an answer to one of the fact's training
    wordings was selected (verified) in iteration 1..i; recall over all facts mixes those with facts the
    model never trained on.
    """
    from autodidact.loop import STORE_FILE
    from autodidact.store import RunStore

    graded = verdicts(run_dir)["heldout_paraphrase"]
    with RunStore(run_dir / STORE_FILE, read_only=True) as store:
        fact_of = {p.id: p.meta.get("fact") for p in store.prompts(split="train")}
        recall_fact = {p.id: p.meta.get("fact") for p in store.prompts(split="heldout_paraphrase")}
        seen: set[str] = set()
        out = {}
        for it in sorted(graded):
            if it:
                seen |= {fact_of.get(e.prompt_id) for e in store.selection(it)}
            ids = [q for q in graded[it] if recall_fact.get(q) in seen]
            out[it] = {"trained_facts": len(ids), "recall": fmean(graded[it][q] for q in ids) if ids else None}
    return out


def facts_info(run_dir: Path) -> dict[str, float]:
    """Question counts by split, and the run's wall-clock seconds from its start to its last finished stage.

    The start is the time the run wrote its config.yaml, before the model wrote any question, so the
    question writing counts; a run stopped and resumed counts the pause too.
    """
    from autodidact.loop import CONFIG_FILE, STORE_FILE
    from autodidact.store import RunStore

    with RunStore(run_dir / STORE_FILE, read_only=True) as store:
        counts = {split: len(store.prompts(split=split)) for split in ("train", *BOOKS)}
        iterations = sorted({row["iteration"] for row in store.metrics()})
        stages = {it: store.stage_seconds(it) for it in iterations}
        built = json.loads(store.get_meta(f"task_stats/{store.prompts(split='train')[0].task}") or "{}")
    # The store's last write: SQLite's write-ahead log holds it until the run closes the store.
    written = [run_dir / STORE_FILE, run_dir / f"{STORE_FILE}-wal", run_dir / CONFIG_FILE]
    last = max(p.stat().st_mtime for p in written if p.exists())
    wall = last - (run_dir / CONFIG_FILE).stat().st_mtime
    per_iteration = {it: round(sum(v.values())) for it, v in stages.items()}
    return counts | {"wall_seconds": round(wall), "stage_seconds": per_iteration, "built": built}


def table(by_seed: dict[int, dict]) -> dict:
    """Per split and iteration: mean accuracy over seeds and the paired gain over iteration 0 with its interval."""
    result: dict = {"seeds": sorted(by_seed), "splits": {}}
    for split, label in BOOKS.items():
        iterations = sorted(set.intersection(*(set(v[split]) for v in by_seed.values())) if by_seed else set())
        rows = {}
        for it in iterations:
            accuracy = fmean(fmean(v[split][it].values()) for v in by_seed.values() if v[split][it])
            cells = [c for v in by_seed.values() if (c := paired_cell(v[split][it], v[split][0])) is not None]
            rows[it] = {"accuracy": accuracy, "gain": interval(cells) if cells and it else None}
        result["splits"][split] = {"label": label, "by_iteration": rows}
    return result


def show(result: dict, info: dict[int, dict]) -> None:
    print(f"seeds: {result['seeds']}")
    for seed, counts in sorted(info.items()):
        print(f"  seed {seed}: {counts}")
    for split in BOOKS:
        part = result["splits"][split]
        print(f"\n{part['label']} ({split}): accuracy %, gain over iteration 0 in points [95% CI], paired per question")
        for it, row in part["by_iteration"].items():
            gain = points(row["gain"]) if row["gain"] else "-"
            print(f"  iteration {it}: {100 * row['accuracy']:5.1f}   {gain}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "apollo13" / "config.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "documents")
    parser.add_argument("--table-only", action="store_true", help="report the finished or partial runs only")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args()
    by_seed, info = {}, {}
    for seed in (int(s) for s in args.seeds.split(",")):
        run_dir = args.out / f"{args.config.parent.name}-s{seed}"
        if not args.table_only:
            run_dir = run_one(args.config, seed, args.out)
        if (run_dir / "run.sqlite").is_file():
            by_seed[seed], info[seed] = verdicts(run_dir), facts_info(run_dir)
            info[seed]["recall_on_trained_facts"] = trained_recall(run_dir)
    result = table(by_seed)
    show(result, info)
    if args.json:
        args.json.write_text(json.dumps({"table": result, "runs": info}, indent=1))


if __name__ == "__main__":
    main()
