"""The run under test of the crash harness, and what a finished run holds: the tiny run's config, the
snapshot of its run directory (rows, metrics, checkpoint hashes) and the comparison with the reference's.

Shared by benchmarks/crash_harness.py (the parent), benchmarks/crash_child.py (the killed and resumed
processes), tests/loop/test_crash_consistency.py and tests/golden.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = 2
STAGES = ("generate", "judge", "select", "train", "evaluate", "monitor")  # autodidact.loop.stages.STAGES
# The order in which a run commits its stages; iteration 0 evaluates the base model only.
STAGE_ORDER = [(0, "evaluate"), (0, "monitor")] + [(it, s) for it in range(1, ITERATIONS + 1) for s in STAGES]
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
    """A 2-iteration run on a tiny model in seconds, with a 2-prompt diversity probe and no embedder (fast);
    tests/loop/test_loop.py's tiny_config is this with the default probe."""
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


# --- what a finished run holds -------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strip_seconds(info: str | None):
    """A stage's info without its timings and peak memory (all that may differ between identical runs)."""
    from autodidact.loop.results import comparable_info

    return None if info is None else comparable_info(json.loads(info))


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
        "checkpoints": {str(it): checkpoint_state(run_dir / p) for it, p, _ in checkpoint_rows},  # p: relative
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
