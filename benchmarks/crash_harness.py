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
import hashlib
import importlib.util
import json
import os
import random
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

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).resolve()
ITERATIONS = 2
STAGES = ("generate", "judge", "select", "train", "evaluate", "monitor")  # autodidact.loop.stages.STAGES
# The order in which a run commits its stages; iteration 0 evaluates the base model only.
STAGE_ORDER = [(0, "evaluate"), (0, "monitor")] + [(it, s) for it in range(1, ITERATIONS + 1) for s in STAGES]
CHECKPOINT_HOOKS = ("ckpt-torn", "ckpt-partial", "ckpt-renamed")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


# --- the run under test ---------------------------------------------------------


def build_tiny_model(path: Path) -> str:
    """Save the tests' tiny random llama (tests/tiny_models.py's builders) with its tokenizer to `path`."""
    spec = importlib.util.spec_from_file_location("_autodidact_test_models", ROOT / "tests" / "tiny_models.py")
    builders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builders)
    tokenizer = builders.build_tokenizer()
    model = builders.build_model("llama", len(tokenizer), tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tiny_run_config(model_dir: str, output_dir: Path, name: str, seed: int = 0) -> dict:
    """tests/test_loop.py's tiny_config with a 2-prompt diversity probe and no embedder (fast)."""
    return {
        "name": name,
        "output_dir": str(output_dir),
        "seed": seed,
        "model": {"name": model_dir, "dtype": "float32", "device": "cpu"},
        "tasks": {"train_size": 6, "heldout_size": 4, "prompts_per_iteration": 3},
        "generation": {"samples_per_prompt": 2, "max_new_tokens": 6},
        "judge": {"batch_size": 8},
        "training": {"lora_r": 2, "lora_alpha": 4, "batch_size": 4},
        "evaluation": {"max_new_tokens": 6},
        "stopping": {"max_iterations": ITERATIONS, "patience": 5},
        "monitors": {"diversity": {"prompts": 2, "embedder": "none"}},
    }


def child_env() -> dict[str, str]:
    return os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


# --- kill points ---------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """Where one process of a point is killed."""

    kind: str  # "startup" | "stage" (both timed) | "hook" (the child kills itself)
    iteration: int | None = None
    stage: str | None = None
    fraction: float = 0.0  # of the reference duration of the startup or stage
    hook: str | None = None  # e.g. "train-step:2", "ckpt-torn:1", "before-commit:2:judge", "config-written"

    def label(self) -> str:
        if self.kind == "hook":
            return self.hook
        where = "startup" if self.kind == "startup" else f"{self.iteration}:{self.stage}"
        return f"{where}@{self.fraction:.2f}"


@dataclass
class Point:
    index: int
    first: Kill
    resume_kill: float | None = None  # kill the first resume too, at this fraction of the stage it redoes
    then: list[Kill] = field(default_factory=list)  # or: these kills, one per resume, in this order


def plan_points(n: int, seed: int) -> list[Point]:
    """`n` kill points, stratified so that every stage is hit, fast ones included.

    In order: one timed kill per stage kind (a random iteration of it), one
    `before-commit` per stage kind (a stage of 20 ms is hard to hit by time,
    its uncommitted end is not), every checkpoint window and `config-written`,
    then the remaining timed strata; past those, timed kills at new fractions.
    """
    rng = random.Random(seed)
    frac = lambda: round(rng.uniform(0.05, 0.95), 3)  # noqa: E731
    timed = [Kill("startup", fraction=frac())] + [Kill("stage", it, s, frac()) for it, s in STAGE_ORDER]
    first = [rng.choice([k for k in timed if (k.stage or "startup") == kind]) for kind in ("startup", *STAGES)]
    commits = []
    for kind in STAGES:
        it = rng.choice([it for it, s in STAGE_ORDER if s == kind])
        commits.append(Kill("hook", hook=f"before-commit:{it}:{kind}"))
    windows = [Kill("hook", hook=f"{h}:{rng.choice(range(1, ITERATIONS + 1))}") for h in CHECKPOINT_HOOKS]
    rest = [k for k in timed if k not in first]
    rng.shuffle(rest)
    ordered = first + commits + windows + [Kill("hook", hook="config-written")] + rest
    while len(ordered) < n:
        k = rng.choice(timed)
        ordered.append(Kill(k.kind, k.iteration, k.stage, frac()))
    return [Point(i, kill, frac() if rng.random() < 1 / 3 else None) for i, kill in enumerate(ordered[:n])]


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
    command = [sys.executable, str(HARNESS), "--child", mode, target, "--marker-fd", str(write_fd)]
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


# --- what a finished run holds -------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strip_seconds(info: str | None):
    """A stage's info without its timings (the only thing that may differ between identical runs)."""
    if info is None:
        return None
    return {k: v for k, v in json.loads(info).items() if "seconds" not in k}


def checkpoint_state(path: Path) -> dict:
    """Whether a checkpoint directory is complete (every file there and the weights readable), and its weights' hash."""
    complete = path.is_dir() and ".tmp" not in path.name and all((path / f).is_file() for f in ADAPTER_FILES)
    sha = None
    if complete:
        from safetensors import safe_open

        try:
            with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
                list(f.keys())
            sha = _sha256(path / "adapter_model.safetensors")
        except Exception:  # a torn file
            complete = False
    return {"complete": complete, "sha256": sha}


def snapshot(run_dir: Path) -> dict:
    """Everything the comparison needs from a finished run directory."""
    with sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True) as conn:
        q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        tables = [r[0] for r in q("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        counts = {t: q(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}
        keys = {
            "prompts": q("SELECT id FROM prompts"),
            "samples": q("SELECT id FROM samples"),
            "judgments": q("SELECT sample_id, judge FROM judgments"),
            "selections": q("SELECT iteration, sample_id FROM selections"),
            "pairs": q("SELECT iteration, chosen_sample_id, rejected_sample_id FROM pairs"),
            "metrics": q("SELECT iteration, name, task FROM metrics"),
            "stages": q("SELECT iteration, stage FROM stages"),
            "checkpoints": q("SELECT iteration FROM checkpoints"),
            "alerts": q("SELECT iteration, monitor FROM alerts"),
            "review_items": q("SELECT id FROM review_items"),
        }
        duplicates = {
            "prompts": q("SELECT id FROM prompts GROUP BY id HAVING COUNT(*) > 1"),
            "samples": q("SELECT id FROM samples GROUP BY id HAVING COUNT(*) > 1"),
            "judgments": q("SELECT sample_id, judge FROM judgments GROUP BY sample_id, judge HAVING COUNT(*) > 1"),
            "stages": q("SELECT iteration, stage FROM stages GROUP BY iteration, stage HAVING COUNT(*) > 1"),
        }
        metrics = q("SELECT iteration, name, task, value FROM metrics ORDER BY iteration, name, task")
        checkpoint_rows = q("SELECT iteration, path, is_best FROM checkpoints ORDER BY iteration")
        content = {t: sorted(map(repr, q(f"SELECT * FROM {t}"))) for t in tables if t not in ("stages", "checkpoints")}
        content["stages"] = sorted(
            repr((it, s, _strip_seconds(info))) for it, s, info in q("SELECT iteration, stage, info FROM stages")
        )
        content["checkpoints"] = [repr((it, Path(p).name, best)) for it, p, best in checkpoint_rows]
    return {
        "counts": counts,
        "keys": {t: sorted(map(repr, rows)) for t, rows in keys.items()},
        "duplicates": {t: len(rows) for t, rows in duplicates.items()},
        "metrics": metrics,
        "content": {t: hashlib.sha256("\n".join(rows).encode()).hexdigest() for t, rows in content.items()},
        "checkpoints": {str(it): checkpoint_state(Path(p)) for it, p, _ in checkpoint_rows},
        "tmp_leftovers": sorted(p.name for p in (run_dir / "checkpoints").glob("*.tmp*")),
    }


def compare(reference: dict, got: dict) -> list[str]:
    """The ways a resumed run differs from the reference, each "code: detail"; empty when it is identical.

    Codes: rows (a count differs: lost or extra rows), duplicates, keys (other rows than the reference's,
    e.g. other samples selected), metrics, content (other values in some rows), checkpoint-incomplete,
    checkpoint-differs (other weights than the reference's). `run_point` adds partial-load, loaded-differs,
    stuck, error and unfinished.
    """
    problems = []
    if got["counts"] != reference["counts"]:
        diff = {t: (reference["counts"].get(t), n) for t, n in got["counts"].items() if reference["counts"].get(t) != n}
        problems.append(f"rows: counts differ (reference, got) {diff}")
    if any(got["duplicates"].values()):
        problems.append(f"duplicates: {got['duplicates']}")
    for table, keys in reference["keys"].items():
        lost, extra = set(keys) - set(got["keys"][table]), set(got["keys"][table]) - set(keys)
        if lost or extra:
            problems.append(f"keys: {table} lacks {len(lost)} of the reference's rows and has {len(extra)} others")
    if got["metrics"] != reference["metrics"]:
        expected = {tuple(row[:3]): row[3] for row in reference["metrics"]}
        values = {tuple(row[:3]): row[3] for row in got["metrics"]}
        differ = {
            k: (expected.get(k), values.get(k))
            for k in expected.keys() | values.keys()
            if expected.get(k, "absent") != values.get(k, "absent")
        }
        example = dict(sorted(differ.items())[:2])
        problems.append(f"metrics: {len(differ)} of {len(expected)} differ (reference, got), e.g. {example}")
    content = [t for t, h in got["content"].items() if reference["content"].get(t) != h]
    if content:
        problems.append(f"content: rows differ in {content}")
    for it, state in got["checkpoints"].items():
        if not state["complete"]:
            problems.append(f"checkpoint-incomplete: iteration {it}")
        elif state["sha256"] != reference["checkpoints"].get(it, {}).get("sha256"):
            problems.append(f"checkpoint-differs: iteration {it}'s weights are not the reference's")
    return problems


def codes(problems: list[str]) -> str:
    return ", ".join(dict.fromkeys(p.split(":", 1)[0] for p in problems))


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
            if not checkpoint_state(Path(state)).get("complete"):
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
    parser.add_argument("--child", nargs=2, metavar=("MODE", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--marker-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hook", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.marker_fd, args.hook)

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


# --- the child: a run or resume with markers and hooks ----------------------------------------


def child(mode: str, target: str, marker_fd: int, hook: str | None) -> None:
    """`autodidact.run` (mode 'run', target a JSON config) or `autodidact.resume` (target a run directory)."""
    markers = os.fdopen(marker_fd, "w", buffering=1)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    name, *where = (hook or "").split(":")

    # Before anything imports them by name: peft binds safetensors' functions at import.
    import safetensors.torch as st

    original_load, original_save = st.load_file, st.save_file

    def load_file(filename, *a, **kw):
        path = Path(filename)
        if "checkpoints" in path.parts:
            state = checkpoint_state(path.parent)
            markers.write("load " + json.dumps({"path": str(path), **state}) + "\n")
        return original_load(filename, *a, **kw)

    def save_file(tensors, filename, *a, **kw):
        original_save(tensors, filename, *a, **kw)
        if name == "ckpt-torn" and Path(filename).parent.name == f"iter-{where[0]}.tmp":
            with open(filename, "r+b") as f:
                f.truncate(os.path.getsize(filename) // 2)
            die()

    st.load_file, st.save_file = load_file, save_file

    if name in ("ckpt-renamed", "config-written"):
        original_rename = Path.rename
        watched = f"iter-{where[0]}.tmp" if name == "ckpt-renamed" else "config.yaml.tmp"

        def rename(self, target):
            moved = original_rename(self, target)
            if self.name == watched:
                die()
            return moved

        Path.rename = rename
    if name == "ckpt-partial":
        from transformers import PreTrainedTokenizerBase

        original_tokenizer_save = PreTrainedTokenizerBase.save_pretrained

        def tokenizer_save(self, save_directory, *a, **kw):
            if Path(save_directory).name == f"iter-{where[0]}.tmp":
                die()
            return original_tokenizer_save(self, save_directory, *a, **kw)

        PreTrainedTokenizerBase.save_pretrained = tokenizer_save

    import logging

    import autodidact
    from autodidact.store import RunStore

    if name == "before-commit":
        original_finish = RunStore.finish_stage

        def finish_stage(self, iteration, stage, *a, **kw):
            original_finish(self, iteration, stage, *a, **kw)
            if (str(iteration), stage) == (where[0], where[1]):
                die()  # the stage's rows and its mark are inserted; COMMIT never comes

        RunStore.finish_stage = finish_stage

    running = [None]  # the stage in progress, "it:stage"

    class StageStarts(logging.Handler):
        """The runner logs "iteration N: stage" as a stage that is not done yet starts: a marker."""

        def emit(self, record):
            if record.msg == "iteration %d: %s":
                running[0] = "%d:%s" % record.args
                markers.write(f"start {running[0]}\n")

    runner_log = logging.getLogger("autodidact.loop.runner")
    runner_log.setLevel(logging.INFO)
    runner_log.addHandler(StageStarts(logging.INFO))

    if name == "train-step":
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        def step(optimizer, args, kwargs):
            if running[0] == f"{where[0]}:train":
                die()  # the first optimizer step: gradients computed, no weight updated yet

        register_optimizer_step_pre_hook(step)

    if mode == "run":
        autodidact.run(json.loads(Path(target).read_text()))
    else:
        autodidact.resume(target)
    markers.write("done\n")


if __name__ == "__main__":
    main()
