"""Tests of RunStore: round trips, the transaction contract, duplicates, durability."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodidact.errors import AutodidactError
from autodidact.records import Judgment, Prompt, Sample, SFTExample
from autodidact.store import SCHEMA_VERSION, RunStore

SRC = Path(__file__).resolve().parents[1] / "src"

TABLES = (
    "meta", "prompts", "samples", "judgments", "selections", "pairs", "metrics", "stages", "checkpoints",
    "alerts", "review_items", "ratings", "faults",
)
EMPTY = {t: 0 for t in TABLES}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


P1 = Prompt("p1", "math", "train", user("1+1?"), reference="2", meta={"level": 1})
P2 = Prompt("p2", "code", "train", user("write f"), reference={"tests": ["assert f()"]})
P3 = Prompt("p3", "math", "heldout", [{"role": "system", "content": "be brief"}, *user("2+2?")], reference=4)


@pytest.fixture
def store(tmp_path: Path):
    with RunStore(tmp_path / "run.sqlite") as s:
        yield s


@pytest.fixture
def filled(store: RunStore) -> RunStore:
    with store.transaction():
        store.add_prompts([P1, P2, P3])
        # inserted out of order on purpose: reads order by prompt insertion, then index
        store.add_samples([
            Sample("s2-1", "p2", 0, 1, "def f(): return 1", 7),
            Sample("s1-1", "p1", 0, 1, "3", 1),
            Sample("s2-0", "p2", 0, 0, "def f(): pass", 5),
            Sample("s1-0", "p1", 0, 0, "2", 1),
            Sample("s3-0", "p3", 0, 0, "4", 1),
            Sample("s1-0-it1", "p1", 1, 0, "two", 1),
        ])
    return store


def test_opens_with_wal_full_sync_foreign_keys_and_schema_version(store: RunStore) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert store.counts() == {**EMPTY, "meta": 1}


def test_meta_round_trip(store: RunStore) -> None:
    assert store.get_meta("model") is None
    with store.transaction():
        store.set_meta("model", "tiny")
        store.set_meta("model", "small")
    assert store.get_meta("model") == "small"
    assert store.counts()["meta"] == 2


def test_prompts_round_trip_order_and_filters(store: RunStore) -> None:
    with store.transaction():
        store.add_prompts([P2, P1, P3])
    assert store.prompts() == [P2, P1, P3]
    assert store.prompts(split="train") == [P2, P1]
    assert store.prompts(task="math") == [P1, P3]
    assert store.prompts(split="heldout", task="math") == [P3]
    assert store.prompts(split="heldout", task="code") == []
    assert store.prompt("p2") == P2
    assert store.prompt("p2").reference == {"tests": ["assert f()"]}
    assert store.prompt("p3").text == "2+2?"
    with pytest.raises(KeyError):
        store.prompt("nope")


def test_samples_round_trip_ordered_by_prompt_then_index(filled: RunStore) -> None:
    assert [s.id for s in filled.samples(0)] == ["s1-0", "s1-1", "s2-0", "s2-1", "s3-0"]
    assert filled.samples(0)[3] == Sample("s2-1", "p2", 0, 1, "def f(): return 1", 7)
    assert filled.samples(1) == [Sample("s1-0-it1", "p1", 1, 0, "two", 1)]
    assert filled.samples(2) == []


def test_judgments_round_trip_keeps_none_score(filled: RunStore) -> None:
    js = [
        Judgment("s1-0", "self", 0.75, "fine", "RAW 0.75"),
        Judgment("s1-1", "self", None, "", "garbage", error="unparseable"),
        Judgment("s1-0", "verifier", 1.0),
        Judgment("s3-0", "verifier", 0.0, raw="4 != 5"),  # held-out sample: stored the same way
        Judgment("s1-0-it1", "self", 0.5),
    ]
    with filled.transaction():
        filled.add_judgments(js)
    got = filled.judgments(0)  # in sample order (prompt insertion, index), then judgment insertion
    assert got == [js[0], js[2], js[1], js[3]]
    assert got[2].score is None and not got[2].ok and got[2].error == "unparseable"
    assert filled.judgments(0, judge="self") == js[:2]
    assert filled.judgments(0, judge="verifier") == [js[2], js[3]]
    assert filled.judgments(1) == [js[4]]
    assert filled.judgments(1, judge="verifier") == []


def test_selection_round_trip(filled: RunStore) -> None:
    ex = [SFTExample("s2-0", "p2", P2.messages, "def f(): pass", 0.9), SFTExample("s1-0", "p1", P1.messages, "2", 1.0)]
    with filled.transaction():
        filled.add_selection(0, ex)
    assert filled.selection(0) == ex
    assert filled.selection(1) == []


def test_metrics_round_trip_none_stays_none_and_nan_rejected(store: RunStore) -> None:
    with store.transaction():
        store.add_metrics(0, {"accuracy": 0.5, "judge_fail_rate": None})
        store.add_metrics(0, {"accuracy": 0.25}, task="math")
        store.add_metrics(1, {"accuracy": 0.75})
    assert store.metric(0, "accuracy") == 0.5
    assert store.metric(0, "accuracy", task="math") == 0.25
    assert store.metric(0, "judge_fail_rate") is None
    assert store.metric(0, "missing") is None
    assert store.metrics(0) == [
        {"iteration": 0, "name": "accuracy", "task": "", "value": 0.5},
        {"iteration": 0, "name": "judge_fail_rate", "task": "", "value": None},
        {"iteration": 0, "name": "accuracy", "task": "math", "value": 0.25},
    ]
    assert [(m["iteration"], m["value"]) for m in store.metrics()] == [(0, 0.5), (0, None), (0, 0.25), (1, 0.75)]
    with pytest.raises(ValueError, match="NaN"):
        with store.transaction():
            store.add_metrics(2, {"ok": 1.0, "bad": math.nan})
    assert store.metrics(2) == []
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.add_metrics(1, {"accuracy": 0.1})
    assert store.metric(1, "accuracy") == 0.75
    assert store.counts()["metrics"] == 4


def test_stages(store: RunStore) -> None:
    assert not store.stage_done(0, "generate")
    assert store.stage_info(0, "generate") is None
    with store.transaction():
        store.finish_stage(0, "generate", 12.5, {"samples": 8})
        store.finish_stage(0, "judge", 3.0)
    assert store.stage_done(0, "generate") and store.stage_done(0, "judge")
    assert not store.stage_done(1, "generate")
    assert store.stage_info(0, "generate") == {"samples": 8}
    assert store.stage_info(0, "judge") is None
    assert store.stage_seconds(0) == {"generate": 12.5, "judge": 3.0}
    assert store.stage_seconds(1) == {}
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.finish_stage(0, "generate", 1.0)
    assert store.stage_seconds(0)["generate"] == 12.5


def test_checkpoints_and_set_best_keeps_exactly_one(store: RunStore, tmp_path: Path) -> None:
    assert store.last_checkpoint() is None and store.best_checkpoint() is None
    with store.transaction():
        for it in (1, 3, 2):
            store.add_checkpoint(it, f"checkpoints/iter-{it}")
    assert store.checkpoint(2) == str(tmp_path / "checkpoints" / "iter-2")
    assert store.checkpoint(9) is None
    assert store.last_checkpoint() == (3, str(tmp_path / "checkpoints" / "iter-3"))
    for best in (2, 1, 1, 3):
        with store.transaction():
            store.set_best(best)
        assert store.best_checkpoint() == (best, str(tmp_path / "checkpoints" / f"iter-{best}"))
        assert store._conn.execute("SELECT COUNT(*) FROM checkpoints WHERE is_best = 1").fetchone()[0] == 1
    with pytest.raises(KeyError):
        with store.transaction():
            store.set_best(7)
    assert store.best_checkpoint()[0] == 3
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.add_checkpoint(1, "checkpoints/other")
    assert store.checkpoint(1) == str(tmp_path / "checkpoints" / "iter-1")


def test_checkpoint_paths_are_stored_relative_to_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with RunStore(Path("runs/r/run.sqlite")) as s, s.transaction():
        s.add_checkpoint(1, run / "checkpoints" / "iter-1")  # absolute, inside the run
        s.add_checkpoint(2, Path("runs/r/checkpoints/iter-2"))  # relative to the working directory, as the loop has it
        s.add_checkpoint(3, "checkpoints/iter-3")  # relative to the run directory
        with pytest.raises(ValueError, match="outside the run directory"):
            s.add_checkpoint(4, tmp_path / "elsewhere" / "iter-4")
    stored = sqlite3.connect(run / "run.sqlite").execute("SELECT path FROM checkpoints ORDER BY iteration").fetchall()
    assert [row[0] for row in stored] == ["checkpoints/iter-1", "checkpoints/iter-2", "checkpoints/iter-3"]


def test_a_moved_run_resolves_its_checkpoints_in_its_new_place_and_old_absolute_paths_to_its_own(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    with RunStore(tmp_path / "a" / "run.sqlite") as s:
        with s.transaction():
            s.add_checkpoint(1, "checkpoints/iter-1")
            s.set_best(1)
            # Written by an older autodidact: the absolute path of another folder (the run before it was copied).
            s._write("INSERT INTO checkpoints (iteration, path, is_best) VALUES (?, ?, 0)",
                     (2, "/old/place/runs/r/checkpoints/iter-2"))
            s._write("INSERT INTO checkpoints (iteration, path, is_best) VALUES (?, ?, 0)", (3, "/old/odd-name"))
    (tmp_path / "a").rename(tmp_path / "b")
    with RunStore(tmp_path / "b" / "run.sqlite", read_only=True) as s:
        assert s.best_checkpoint() == (1, str(tmp_path / "b" / "checkpoints" / "iter-1"))
        assert s.checkpoint(2) == str(tmp_path / "b" / "checkpoints" / "iter-2")  # never /old/place/...
        assert s.checkpoint(3) == "/old/odd-name"  # not a checkpoint folder of a run: left as it was


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.set_meta("k", "v"),
        lambda s: s.add_prompts([P1]),
        lambda s: s.add_samples([Sample("x", "p1", 0, 0, "t", 1)]),
        lambda s: s.add_judgments([Judgment("s1-0", "self", 1.0)]),
        lambda s: s.add_selection(0, [SFTExample("s1-0", "p1", P1.messages, "2", 1.0)]),
        lambda s: s.add_metrics(0, {"a": 1.0}),
        lambda s: s.finish_stage(0, "generate", 1.0),
        lambda s: s.add_checkpoint(0, "checkpoints/c"),
        lambda s: s.set_best(0),
    ],
)
def test_writes_outside_transaction_raise(filled: RunStore, write) -> None:
    before = filled.counts()
    with pytest.raises(RuntimeError, match="transaction"):
        write(filled)
    assert filled.counts() == before


def test_exception_in_transaction_rolls_back_rows_and_stage_mark(filled: RunStore) -> None:
    before = filled.counts()
    with pytest.raises(ZeroDivisionError):
        with filled.transaction():
            filled.add_judgments([Judgment("s1-0", "self", 1.0), Judgment("s1-1", "self", None)])
            filled.add_metrics(0, {"mean_score": 0.5})
            filled.finish_stage(0, "judge", 2.0)
            1 / 0
    assert filled.counts() == before
    assert not filled.stage_done(0, "judge")
    assert filled.judgments(0) == []
    # the store stays usable after a rollback
    with filled.transaction():
        filled.finish_stage(0, "judge", 2.0)
    assert filled.stage_done(0, "judge")


def test_nested_transactions_join_the_outer_one(filled: RunStore, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "run.sqlite")
    with pytest.raises(KeyError):
        with filled.transaction():
            with filled.transaction():
                filled.finish_stage(0, "generate", 1.0)
            # the inner exit did not commit: another connection sees nothing yet
            assert other.execute("SELECT COUNT(*) FROM stages").fetchone()[0] == 0
            raise KeyError("outer fails")
    assert not filled.stage_done(0, "generate")
    with filled.transaction():
        with filled.transaction():
            filled.finish_stage(0, "generate", 1.0)
    assert other.execute("SELECT COUNT(*) FROM stages").fetchone()[0] == 1
    other.close()


def test_duplicate_sample_raises_and_leaves_one_row(filled: RunStore) -> None:
    before = filled.counts()
    with pytest.raises(sqlite3.IntegrityError):  # same id
        with filled.transaction():
            filled.add_samples([Sample("s1-0", "p1", 5, 0, "again", 1)])
    with pytest.raises(sqlite3.IntegrityError):  # same (iteration, prompt, index), new id
        with filled.transaction():
            filled.add_samples([Sample("other", "p1", 0, 0, "again", 1)])
    with pytest.raises(sqlite3.IntegrityError):  # duplicate inside one batch
        with filled.transaction():
            filled.add_samples([Sample("n", "p1", 7, 0, "a", 1), Sample("n", "p1", 7, 1, "b", 1)])
    assert filled.counts() == before
    assert [s.text for s in filled.samples(0) if s.prompt_id == "p1" and s.index == 0] == ["2"]
    assert filled.samples(7) == []


def test_duplicate_prompt_and_judgment_raise(filled: RunStore) -> None:
    with filled.transaction():
        filled.add_judgments([Judgment("s1-0", "self", 1.0)])
    before = filled.counts()
    with pytest.raises(sqlite3.IntegrityError):
        with filled.transaction():
            filled.add_prompts([P1])
    with pytest.raises(sqlite3.IntegrityError):
        with filled.transaction():
            filled.add_judgments([Judgment("s1-0", "self", 0.0)])
    assert filled.counts() == before
    assert filled.judgments(0) == [Judgment("s1-0", "self", 1.0)]


def test_foreign_keys_enforced(filled: RunStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        with filled.transaction():
            filled.add_samples([Sample("orphan", "no-such-prompt", 0, 0, "t", 1)])
    with pytest.raises(sqlite3.IntegrityError):
        with filled.transaction():
            filled.add_judgments([Judgment("no-such-sample", "self", 1.0)])
    assert filled.counts()["samples"] == 6 and filled.counts()["judgments"] == 0


def test_reopen_sees_committed_data(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as s:
        with s.transaction():
            s.add_prompts([P1])
            s.add_samples([Sample("s", "p1", 0, 0, "2", 1)])
            s.add_judgments([Judgment("s", "self", None, error="timeout")])
            s.add_metrics(0, {"accuracy": None, "mean": 0.5})
            s.finish_stage(0, "generate", 1.5, {"n": 1})
            s.add_checkpoint(0, "checkpoints/iter-0")
            s.set_best(0)
        counts = s.counts()
    with RunStore(path) as s:
        assert s.counts() == counts
        assert s.prompts() == [P1]
        assert s.judgments(0) == [Judgment("s", "self", None, error="timeout")]
        assert s.metric(0, "accuracy") is None and s.metric(0, "mean") == 0.5
        assert s.stage_done(0, "generate") and s.stage_info(0, "generate") == {"n": 1}
        assert s.best_checkpoint() == (0, str(tmp_path / "checkpoints" / "iter-0"))
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as s, s.transaction():
        s.set_meta("schema_version", "999")
    with pytest.raises(AutodidactError, match="schema version 999"):
        RunStore(path)


def test_sigkill_mid_transaction_leaves_no_partial_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from autodidact.records import Prompt, Sample
        from autodidact.store import RunStore

        s = RunStore(Path({str(path)!r}))
        with s.transaction():
            s.add_prompts([Prompt("p", "math", "train", [{{"role": "user", "content": "q"}}])])
            s.finish_stage(0, "prepare", 0.1)
        s._conn.execute("PRAGMA cache_size=10")  # make uncommitted pages spill into the WAL
        with s.transaction():
            for i in range(20):
                s.add_samples([Sample(f"s{{i}}-{{j}}", "p", 0, i * 1000 + j, "x" * 500, 100)
                               for j in range(1000)])
            s.finish_stage(0, "generate", 1.0)
            print("inserted", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "inserted"
    with RunStore(path) as s:
        assert s._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert s.counts() == {**EMPTY, "meta": 1, "prompts": 1, "stages": 1}
        assert s.samples(0) == []
        assert s.stage_done(0, "prepare") and not s.stage_done(0, "generate")
        with s.transaction():  # and it is writable again
            s.add_samples([Sample("s0", "p", 0, 0, "y", 1)])
        assert len(s.samples(0)) == 1


def test_a_store_from_before_the_origin_column_opens_with_each_samples_origin(tmp_path: Path) -> None:
    """Runs begun before samples had an origin resume: the column is added and filled from the old id suffixes."""
    path = tmp_path / "old.sqlite"
    with RunStore(path) as s:  # the current schema, then samples rebuilt as version 1 had them
        s._conn.execute("DROP INDEX samples_iteration")
        s._conn.execute("ALTER TABLE samples DROP COLUMN origin")
        s._conn.execute("CREATE INDEX samples_iteration ON samples (iteration)")
        with s.transaction():
            s.add_prompts([Prompt("p", "t", "train", [{"role": "user", "content": "q"}]),
                           Prompt("h", "t", "heldout", [{"role": "user", "content": "q"}])])
        rows = [("it1-p-0", "p", 0), ("it1-p-deployed", "p", 2), ("it1-p-rev0", "p", 3), ("it2-p-g1", "p", 1),
                ("it1-h-0", "h", 0)]
        for sample_id, prompt_id, idx in rows:
            s._conn.execute("INSERT INTO samples (id, prompt_id, iteration, idx, text, num_tokens) VALUES (?, ?, ?, ?, 'x', 1)",
                            (sample_id, prompt_id, int(sample_id[2]), idx))
    with RunStore(path) as s:
        assert {x.id: x.origin for x in s.samples(1) + s.samples(2)} == {
            "it1-p-0": "generated", "it1-p-deployed": "deployed", "it1-p-rev0": "revision", "it2-p-g1": "online",
            "it1-h-0": "heldout",
        }
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
        with s.transaction():
            s.add_samples([Sample("it3-p-0", "p", 3, 0, "y", 1, origin="online")])
        assert s.sample("it3-p-0").origin == "online"


# --- files and folders: read-only opens, locks, read-only folders ------------------------------------------


def _immutable(path: Path) -> None:
    """Make `path` read-only even for root (chattr +i); skip where the file system cannot."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")


def _mutable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_a_read_only_open_never_writes_and_reads_a_store_in_a_read_only_folder(filled: RunStore, tmp_path) -> None:
    with filled.transaction():
        filled.add_checkpoint(1, "checkpoints/iter-1")
    filled.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _immutable(tmp_path)
    try:
        with RunStore(tmp_path / "run.sqlite", read_only=True) as s:
            assert [x.id for x in s.samples(0)] == ["s1-0", "s1-1", "s2-0", "s2-1", "s3-0"]
            assert s.checkpoint(1) == str(tmp_path / "checkpoints" / "iter-1")
            with pytest.raises(RuntimeError, match="read_only"), s.transaction():
                s.set_meta("k", "v")
        with pytest.raises(AutodidactError, match=rf"cannot write to run directory '{tmp_path}' \(read-only\); copy"):
            RunStore(tmp_path / "run.sqlite")
    finally:
        _mutable(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_read_only_open_of_an_older_store_upgrades_a_copy_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as s:
        s._conn.execute("DROP TABLE faults")  # a store from before training faults were recorded
    before = path.read_bytes()
    with RunStore(path, read_only=True) as s:
        assert s.faults() == [] and s.counts()["faults"] == 0
    assert path.read_bytes() == before
    assert "faults" not in {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}


def test_a_store_locked_by_another_process_is_one_line_naming_the_run(store: RunStore, tmp_path, monkeypatch) -> None:
    import autodidact.store.connection as connection

    monkeypatch.setattr(connection, "BUSY_SECONDS", 0.1)
    other = sqlite3.connect(tmp_path / "run.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        s = RunStore(tmp_path / "run.sqlite")
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)  # WAL: reading goes on
        with pytest.raises(AutodidactError) as caught, s.transaction():
            s.set_meta("k", "v")
        other.execute("ROLLBACK")  # the other process finished: trying again works, as the error says
        with s.transaction():
            s.set_meta("k", "v")
        assert s.get_meta("k") == "v"
    finally:
        other.close()
    assert str(caught.value) == (
        f"run '{tmp_path}': its store run.sqlite is locked by another process (another autodidact command, a run, "
        "resume or review, is using it); wait for it to finish or stop it, then try again."
    )


def test_a_full_disk_while_writing_the_store_is_one_line(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import resource, signal
        from autodidact.errors import AutodidactError
        from autodidact.records import Prompt
        from autodidact.store import RunStore

        s = RunStore({str(tmp_path / "run.sqlite")!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            with s.transaction():
                s.add_prompts([Prompt(f"p{{i}}", "t", "train", [{{"role": "user", "content": "x" * 1000}}])
                               for i in range(500)])
        except AutodidactError as exc:
            print(exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == (
        f"disk full (or a disk I/O error) while writing {tmp_path / 'run.sqlite'}; free space or choose another "
        "output_dir."
    ), proc.stderr
    with RunStore(tmp_path / "run.sqlite") as s:
        assert s.counts()["prompts"] == 0
