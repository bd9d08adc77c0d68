"""The golden runs: fixed tiny configurations whose every stored row is pinned by a snapshot.

    HF_HUB_OFFLINE=1 .venv/bin/python tests/golden.py --write   # re-take tests/data/golden/*.json

The snapshots were taken on main at 2339223, before the loop was rebuilt
around stages (issue 17); `tests/loop/test_golden.py` runs the same
configurations and compares every row of every table and every checkpoint's
weights with them. A change that alters what a run stores fails there: if the
change is meant, re-take the snapshots and say why in the commit.

What is compared: every column of every table that the snapshot holds (a
column added later is not compared), stage info without its timings, the
checkpoint path relative to the run directory, and the sha256 of each
checkpoint's adapter weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAPSHOTS = HERE / "data" / "golden"
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from crash_run import build_tiny_model, tiny_run_config  # noqa: E402  (the crash harness's tiny run, 2 iterations)

from autodidact.loop.results import comparable_info  # noqa: E402


def _with(config: dict, **sections: dict) -> dict:
    return config | {key: config.get(key, {}) | value for key, value in sections.items()}


# name -> what it changes in the base run: one per stage plan and the judge paths with their own side outputs.
VARIANTS: dict[str, dict] = {
    "sft_direct": {},
    "dpo_pairwise": {"judge": {"method": "pairwise"}, "training": {"method": "dpo"}},
    "grpo": {"training": {"method": "grpo"}},
    "revise_contrastive": {"judge": {"method": "contrastive", "reasoning_tokens": 4}, "selection": {"revise": True}},
    "routed_consistency": {
        "judge": {"method": "direct", "tasks": {"arithmetic": {"method": "self_consistency", "consistency_score": "share"}}}
    },
}


def config_for(variant: str, model_dir: str, output_dir: Path) -> dict:
    return _with(tiny_run_config(model_dir, output_dir, variant), **VARIANTS[variant])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain(value):
    """A row's value as JSON keeps it: floats by repr, so the comparison is to the last bit."""
    return repr(value) if isinstance(value, float) else value


def snapshot(run_dir: Path) -> dict[str, list]:
    """table -> rows (each a dict of column -> value), sorted; checkpoints -> weights hashes."""
    out: dict[str, list] = {}
    with sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            rows = []
            for row in conn.execute(f"SELECT * FROM {table}"):
                row = dict(row)
                if table == "stages" and row.get("info"):
                    row["info"] = comparable_info(json.loads(row["info"]))
                    row.pop("seconds", None)
                if table == "stages":
                    row = {k: v for k, v in row.items() if k in ("iteration", "stage", "info")}
                if table == "checkpoints":
                    path = Path(row["path"])
                    row["path"] = f"checkpoints/{path.name}"
                    row["weights_sha256"] = _sha256(run_dir / row["path"] / "adapter_model.safetensors")
                if table == "meta" and row["key"] in ("created_at", "started_at"):
                    continue
                rows.append({k: _plain(v) for k, v in row.items()})
            out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


def differences(expected: dict[str, list], got: dict[str, list]) -> list[str]:
    """What differs, one line per table (empty when the run matches the snapshot)."""
    problems = []
    for table, rows in expected.items():
        if table not in got:
            problems.append(f"{table}: table missing")
            continue
        columns = set().union(*(r.keys() for r in rows)) if rows else set()
        mine = sorted(
            ({k: v for k, v in r.items() if k in columns} for r in got[table]), key=lambda r: json.dumps(r, sort_keys=True)
        )
        if mine != rows:
            first = next((i for i, (a, b) in enumerate(zip(rows, mine)) if a != b), min(len(rows), len(mine)))
            problems.append(
                f"{table}: {len(rows)} rows expected, {len(mine)} stored; first difference at row {first}: "
                f"expected {rows[first] if first < len(rows) else None!r}, got {mine[first] if first < len(mine) else None!r}"
            )
    return problems


def run_variant(variant: str, model_dir: str, output_dir: Path) -> dict[str, list]:
    import autodidact

    autodidact.run(config_for(variant, model_dir, output_dir))
    return snapshot(output_dir / variant)


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="re-take the snapshots")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "model")
        failed = 0
        for variant in args.variants.split(","):
            got = run_variant(variant, model_dir, Path(tmp) / "runs")
            path = SNAPSHOTS / f"{variant}.json"
            if args.write:
                SNAPSHOTS.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
                print(f"{variant}: wrote {path} ({sum(map(len, got.values()))} rows)")
                continue
            problems = differences(json.loads(path.read_text()), got)
            failed += bool(problems)
            print(f"{variant}: {'identical' if not problems else 'DIFFERS'}")
            for line in problems:
                print("   ", line[:600])
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
