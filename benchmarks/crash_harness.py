"""Crash consistency: SIGKILL a tiny run at many points in every stage, resume it, compare with an unkilled run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/crash_harness.py [--points 24] [--seed 0] \\
        [--out bench-results/crash.json] [--work DIR]

One uninterrupted reference run (a tiny random llama, fp32 on the CPU, 2
iterations) gives the stage timeline and the expected store. Then, for each
kill point, a fresh run is started in a subprocess, killed with SIGKILL, and
resumed (`autodidact.resume`) until it finishes; for about a third of the
points the first resume is killed too. Every run then has to match the
reference: the same rows in every table (nothing lost, nothing duplicated),
the same metrics to the last bit, the same checkpoint files, every
checkpoint complete, and no checkpoint loaded that was partial.

Kill points are stratified so that every stage gets some:

- timed: `startup` (imports, model load, run directory, prompts) or inside
  one stage of one iteration: the child reports when the stage starts and the
  kill comes a seeded fraction of the reference stage's duration later;
- hooked, for windows too short to hit by time (the child kills itself):
  `train-step:IT` (in the first optimizer step of IT's training),
  `ckpt-torn:IT` (the adapter file half written), `ckpt-partial:IT` (adapter
  written, tokenizer not), `ckpt-renamed:IT` (checkpoint renamed into place,
  store not committed), `before-commit:IT:STAGE` (a stage's rows inserted,
  COMMIT not reached) and `config-written` (config.yaml in place, no store yet).

The child processes are this script with `--child`; they report stage starts
and every checkpoint file they load on a pipe (`--marker-fd`).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crash_points import Kill, Point, plan_points
from crash_run import ROOT, STAGE_ORDER, build_tiny_model, checkpoint_state, codes, compare, snapshot, tiny_run_config

CHILD = Path(__file__).resolve().parent / "crash_child.py"


def child_env() -> dict[str, str]:
    return os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


# --- one child process ---------------------------------------------------------------


@dataclass
class Attempt:
    mode: str  # "run" or "resume"
    kill: str | None  # its Kill label, or None (runs to the end)
    rc: int | None = None
    seconds: float = 0.0
    killed_at: float | None = None  # seconds after launch
    landed: str | None = None  # the stage in progress at the kill, read from the store
    delay_s: float | None = None  # a timed kill: seconds after the launch (startup) or the stage's start
    finished_at: float | None = None  # seconds after launch when the run returned
    starts: dict[str, float] = field(default_factory=dict)  # "it:stage" -> seconds after launch
    loads: list[dict] = field(default_factory=list)  # checkpoint files loaded: path, complete, sha256
    error: str | None = None  # the end of its output when it failed on its own (not killed)


def launch(mode: str, target: str, kill: Kill | None, work: Path, reference: dict | None, timeout: float) -> Attempt:
    """Run one child; SIGKILL it at `kill` (timed kills are timed here, hooked ones by the child)."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, str(CHILD), mode, target, "--marker-fd", str(write_fd)]
    if kill is not None and kill.kind == "hook":
        command += ["--hook", kill.hook]
    log = open(work / f"child-{time.monotonic_ns()}.log", "wb")
    start = time.monotonic()
    proc = subprocess.Popen(
        command, pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT
    )
    os.close(write_fd)
    attempt = Attempt(mode, kill.label() if kill else None)
    deadline = None
    if kill is not None and kill.kind == "startup":
        attempt.delay_s = round(kill.fraction * expected_s(reference, "startup"), 3)
        deadline = start + attempt.delay_s
    buffer = b""
    with os.fdopen(read_fd, "rb", buffering=0) as markers:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and attempt.killed_at is None:
                os.kill(proc.pid, signal.SIGKILL)
                attempt.killed_at = now - start
            if now - start > timeout:
                os.kill(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"child {mode} {target} ran past {timeout:.0f} s; see {log.name}")
            wait = 0.5 if deadline is None or attempt.killed_at is not None else max(0.0, deadline - now)
            ready, _, _ = select.select([markers], [], [], wait)
            if not ready:
                continue
            chunk = markers.read(65536)
            if not chunk:  # every write end closed: the child is gone
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                word, *rest = line.decode().split(" ", 1)
                at = time.monotonic() - start
                if word == "start":
                    attempt.starts[rest[0]] = round(at, 3)
                    it, stage = rest[0].split(":")
                    if kill is not None and kill.kind == "stage" and (kill.iteration, kill.stage) == (int(it), stage):
                        attempt.delay_s = round(kill.fraction * expected_s(reference, rest[0]), 3)
                        deadline = time.monotonic() + attempt.delay_s
                elif word == "done":
                    attempt.finished_at = round(at, 3)
                elif word == "load":
                    attempt.loads.append(json.loads(rest[0]))
    attempt.rc = proc.wait()
    log.close()
    attempt.seconds = round(time.monotonic() - start, 3)
    if attempt.killed_at is not None:
        attempt.killed_at = round(attempt.killed_at, 3)
    if attempt.rc not in (0, -signal.SIGKILL):
        attempt.error = Path(log.name).read_text(errors="replace")[-2000:]
    if reference is not None:
        observe(reference, attempt)
    return attempt


def observe(reference: dict, attempt: Attempt) -> None:
    """Add the startup and stage durations this child showed to the recent ones.

    The machine may be shared: a stage's duration varies several-fold with the
    load, so a kill is timed as a fraction of the duration seen lately, not of
    the reference run's alone.
    """
    recent = reference.setdefault("recent_s", {})
    starts = attempt.starts | ({"end": attempt.finished_at} if attempt.finished_at is not None else {})
    if starts:
        recent.setdefault("startup", []).append(min(starts.values()))
    keys = [f"{it}:{s}" for it, s in STAGE_ORDER] + ["end"]
    for key, following in zip(keys, keys[1:], strict=False):
        if key in starts and following in starts:
            recent.setdefault(key, []).append(round(starts[following] - starts[key], 3))


def expected_s(reference: dict, key: str) -> float:
    """The median of the last five durations seen of the startup or a stage (the reference's first)."""
    seen = [reference["startup_s"] if key == "startup" else reference["stage_s"][key]]
    seen = (seen + reference.get("recent_s", {}).get(key, []))[-5:]
    return sorted(seen)[len(seen) // 2]


def in_progress(run_dir: Path) -> str:
    """The first stage the store does not mark done ('startup' before the prompts, 'finish' after the last)."""
    store = run_dir / "run.sqlite"
    if not store.is_file() or store.stat().st_size == 0:
        return "startup"
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        try:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'prompts_ready'").fetchone() is None:
                return "startup"
            done = set(conn.execute("SELECT iteration, stage FROM stages").fetchall())
        except sqlite3.OperationalError:  # killed before the schema was committed
            return "startup"
    return next((f"{it}:{s}" for it, s in STAGE_ORDER if (it, s) not in done), "finish")


# --- the harness ------------------------------------------------------------------------------


def reference_run(model_dir: str, work: Path, seed: int) -> dict:
    """The uninterrupted run: its timeline (stage starts and ends after launch), durations and snapshot."""
    config = work / "reference.json"
    config.write_text(json.dumps(tiny_run_config(model_dir, work / "runs", "reference", seed)))
    launched = time.time()
    attempt = launch("run", str(config), None, work, None, timeout=600)
    run_dir = work / "runs" / "reference"
    with sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT iteration, stage, seconds, finished_at FROM stages ORDER BY rowid").fetchall()
    timeline = [
        {
            "stage": f"{it}:{s}",
            "start_s": attempt.starts.get(f"{it}:{s}"),
            "end_s": round(end - launched, 3),
            "seconds": round(sec, 3),
        }
        for it, s, sec, end in rows
    ]
    return {
        "wall_s": attempt.seconds,
        "startup_s": attempt.starts["0:evaluate"],
        "stage_s": {row["stage"]: row["seconds"] for row in timeline},
        "timeline": timeline,
        "snapshot": snapshot(run_dir),
        "run_dir": str(run_dir),
    }


def run_point(point: Point, model_dir: str, work: Path, reference: dict, seed: int, max_attempts: int = 6) -> dict:
    """Start, kill, resume until finished; then compare with the reference."""
    name = f"p{point.index:02d}"
    config = work / f"{name}.json"
    config.write_text(json.dumps(tiny_run_config(model_dir, work / "runs", name, seed)))
    run_dir = work / "runs" / name
    timeout = 20 * reference["wall_s"] + 60
    attempts: list[Attempt] = []
    problems: list[str] = []
    kill: Kill | None = point.first
    while len(attempts) < max_attempts:
        # As a user would: `resume` once config.yaml is there (run refuses such a directory), else `run` again.
        has_config, has_store = (run_dir / "config.yaml").is_file(), (run_dir / "run.sqlite").is_file()
        mode, target = ("resume", str(run_dir)) if has_config else ("run", str(config))
        attempt = launch(mode, target, kill, work, reference, timeout)
        attempts.append(attempt)
        for load in attempt.loads:
            iteration = Path(load["path"]).parent.name.removeprefix("iter-")
            if not load["complete"]:
                problems.append(f"partial-load: {load['path']}")
            elif load["sha256"] != reference["snapshot"]["checkpoints"].get(iteration, {}).get("sha256"):
                problems.append(f"loaded-differs: {load['path']} holds other weights than the reference's")
        if attempt.rc == 0:
            break
        if attempt.error is not None:
            what = "stuck: config.yaml without run.sqlite" if has_config and not has_store else "error"
            problems.append(f"{what}: {mode} failed: {attempt.error.strip().splitlines()[-1]}")
            break
        attempt.landed = in_progress(run_dir)
        for it, state in _checkpoint_rows(run_dir):  # what the store references after a kill must be whole
            if not checkpoint_state(run_dir / state).get("complete"):  # stored relative to the run
                problems.append(f"checkpoint-incomplete: after a kill the store references iteration {it}'s")
        kill = None
        if len(attempts) <= len(point.then):
            kill = point.then[len(attempts) - 1]
        elif len(attempts) == 1 and point.resume_kill is not None:  # kill the resume too, inside the stage it redoes
            if attempt.landed in ("startup", "finish"):
                kill = Kill("startup", fraction=point.resume_kill)
            else:
                it, stage = attempt.landed.split(":")
                kill = Kill("stage", int(it), stage, point.resume_kill)
    else:
        problems.append(f"unfinished: not finished after {max_attempts} processes")
    first = attempts[0] if attempts else Attempt("run", None)
    result = {
        "point": point.index,
        "kill": point.first.label(),
        "killed_at_s": first.killed_at,
        "landed": first.landed if first.rc != 0 else "missed (finished first)",
        "resumes": max(0, len(attempts) - 1),
        "kills": sum(1 for a in attempts if a.rc != 0),
        "kill_during_resume": len(attempts) > 1 and attempts[1].kill is not None and attempts[1].rc != 0,
        "attempts": [asdict(a) for a in attempts],
    }
    finished = bool(attempts) and attempts[-1].rc == 0
    got = snapshot(run_dir) if finished else None
    if got is not None:
        problems += compare(reference["snapshot"], got)
        result["tmp_leftovers"] = got["tmp_leftovers"]
        result["metrics_identical"] = got["metrics"] == reference["snapshot"]["metrics"]
        # Nothing lost or duplicated: every table has the reference's row count and no key twice.
        result["rows_intact"] = got["counts"] == reference["snapshot"]["counts"] and not any(got["duplicates"].values())
        result["same_rows"] = got["keys"] == reference["snapshot"]["keys"]
    result["partial_loads"] = sum(1 for a in attempts for load in a.loads if not load["complete"])
    result["problems"] = problems
    result["ok"] = finished and not problems
    return result


def _checkpoint_rows(run_dir: Path) -> list[tuple[int, str]]:
    store = run_dir / "run.sqlite"
    if not store.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT iteration, path FROM checkpoints").fetchall()
    except sqlite3.OperationalError:
        return []


def summarize(results: list[dict], reference: dict, seconds: float) -> dict:
    n = len(results)
    landed: dict[str, int] = {}
    for r in results:
        stage = r["landed"].split(":")[-1] if r["landed"] and ":" in r["landed"] else r["landed"]
        landed[stage] = landed.get(stage, 0) + 1
    return {
        "points": n,
        "survived": sum(r["ok"] for r in results),
        "finished": sum(bool(r["attempts"]) and r["attempts"][-1]["rc"] == 0 for r in results),
        "rows_intact": sum(bool(r.get("rows_intact")) for r in results),
        "same_rows": sum(bool(r.get("same_rows")) for r in results),
        "metrics_identical": sum(bool(r.get("metrics_identical")) for r in results),
        "partial_checkpoint_loads": sum(r["partial_loads"] for r in results),
        "kills": sum(r["kills"] for r in results),
        "resumes": sum(r["resumes"] for r in results),
        "kill_during_resume": sum(r["kill_during_resume"] for r in results),
        "landed_in": landed,
        "reference_wall_s": reference["wall_s"],
        "total_s": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=24, help="kill points (each a fresh run, killed and resumed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points and of the runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "crash.json")
    parser.add_argument("--work", type=Path, default=None, help="keep the run directories here (default: a temp dir)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(emoji=False, highlight=False)
    start = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="crash-harness-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = build_tiny_model(work / "tiny-llama")
    reference = reference_run(model_dir, work, args.seed)
    console.print(
        f"reference run: {reference['wall_s']:.1f} s, startup {reference['startup_s']:.1f} s; stages (s): "
        + ", ".join(f"{r['stage']} {r['seconds']:.2f}" for r in reference["timeline"])
    )
    table = Table("point", "kill", "killed at (s)", "in progress", "resumes", "result")
    results = []
    for point in plan_points(args.points, args.seed):
        result = run_point(point, model_dir, work, reference, args.seed)
        results.append(result)
        killed = "-" if result["killed_at_s"] is None else f"{result['killed_at_s']:.2f}"
        kill = result["kill"] + (" +resume" if result["kill_during_resume"] else "")
        outcome = "ok" if result["ok"] else codes(result["problems"])
        table.add_row(str(point.index), kill, killed, result["landed"], str(result["resumes"]), outcome)
        console.print(f"point {point.index}: {kill} -> {result['landed']}: {outcome}")
    summary = summarize(results, reference, time.perf_counter() - start)
    console.print(table)
    console.print(summary)
    reference.pop("snapshot")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"seed": args.seed, "summary": summary, "reference": reference, "points": results}
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
