"""Malformed input, case by case: one line naming the problem and the fix, exit code 2, nothing changed.

The cases are data: tests/data/bad/cases.yaml (with the presets) and cases-*.yaml list each one (the CLI
arguments, the words the error must contain), next to the small files they point at. Inputs too large or
too binary to commit (a 10 MB line, a truncated GGUF, random bytes) are written once per session by
`generated`.

Most cases call `autodidact.apps.cli.main()` in this process (a subprocess costs seconds of imports); the
ones marked `subprocess: true` run the real entry point, so the in-process shortcut is checked too.
Filesystem cases make paths read-only (`readonly`), fill the disk (`fsize_limit`: a child process with a
file-size limit) or hold a store's lock (`locked`) while they run; cases.yaml's header describes the fields.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import yaml

BAD = Path(__file__).parents[1] / "data" / "bad"
MANIFEST = yaml.safe_load((BAD / "cases.yaml").read_text(encoding="utf-8"))
PRESETS = MANIFEST["presets"]
# One file a class of input (config files, filesystems, ...): cases.yaml first, then cases-*.yaml by name.
MANIFESTS = [BAD / "cases.yaml", *sorted(BAD.glob("cases-*.yaml"))]
CASES = [case for path in MANIFESTS for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]]

# A fix is an instruction: the error must contain at least one of these verbs.
FIX_WORDS = re.compile(
    r"\b(set|fix|use|check|remove|choose|give|add|install|reinstall|lower|raise|rename|save|delete|create|"
    r"point|shorten|split|continue|unset|flatten|pass|name|start|copy|free|wait)\b",
    re.IGNORECASE,
)
PATH_LIKE = re.compile(r"\S*/\S*")
# Log records (a warning about skipped files before the error) are not part of the error.
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING) \S+: ")

MB = 1 << 20


def test_the_corpus_is_large_and_every_file_is_used():
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 50
    assert all(case.get("preset") in (None, *PRESETS) for case in CASES)
    text = "\n".join(path.read_text(encoding="utf-8") for path in MANIFESTS)

    def used(path: Path) -> bool:  # named itself, or its folder is
        rel = path.relative_to(BAD)
        return any(f"{{bad}}/{p.as_posix()}" in text for p in (rel, *rel.parents[:-1]))

    unused = [str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file() and p not in MANIFESTS and not used(p)]
    assert not unused, f"files in tests/data/bad that no case uses: {unused}"


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """Inputs made at test time: too large or too binary to keep in the repository."""
    root = tmp_path_factory.mktemp("bad-generated")
    rng = random.Random(0)
    (root / "random_bytes.jsonl").write_bytes(bytes(rng.randrange(256) for _ in range(64 * 1024)))
    (root / "binary.yaml").write_bytes(b"\x00\x01\x02\xff\xfe" * 200)
    (root / "deep.yaml").write_text("tasks:\n  names: " + "[" * 5000 + "]" * 5000 + "\n")
    # Past Python's parser limits: a 5000-digit number, then 100000 nested arrays.
    (root / "json_limits.jsonl").write_text('{"prompt": ' + "1" * 5000 + "}\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    # One valid JSON row whose prompt is 10 MB: reading it must neither hang nor be accepted as a prompt.
    (root / "huge_line.jsonl").write_text('{"prompt": "' + "x" * (10 * MB) + '"}\n', encoding="utf-8")
    (root / "huge_garbage.jsonl").write_bytes(b"y" * (10 * MB))  # 10 MB, no newline, not JSON
    (root / "big.yaml").write_text("# padding\n" * 110_000 + "seed: 1\n")  # 1.05 MB: valid YAML, over the limit
    try:
        from autodidact.models import bundled_gguf

        with bundled_gguf().open("rb") as f:
            (root / "truncated.gguf").write_bytes(f.read(MB))  # a real header, then nothing
    except Exception:  # the bundled model is not installed: the cases that need it are skipped
        pass
    return root


def _make_run(run_dir: Path, config_text: str) -> None:
    from autodidact.store import RunStore

    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_text, encoding="utf-8")
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.set_meta("note", "made by test_bad_input")


def _make_trained(run_dir: Path, config_text: str, checkpoints: dict[int, str], on_disk: list[int]) -> None:
    """A run that trained: checkpoint rows stored as `checkpoints` gives them (best: the highest), and small
    adapter-shaped folders for the iterations `on_disk` (enough for what is checked before any model loads)."""
    from autodidact.store import RunStore

    _make_run(run_dir, config_text)
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        for iteration, stored in checkpoints.items():  # written as is: an older run's absolute paths too
            store._write("INSERT INTO checkpoints (iteration, path, is_best) VALUES (?, ?, 0)", (iteration, stored))
        store.set_best(max(checkpoints))
        store.set_meta("best_iteration", str(max(checkpoints)))
    for iteration in on_disk:
        folder = run_dir / "checkpoints" / f"iter-{iteration}"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "base", "peft_type": "LORA"}\n')
        (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 256)  # 64 KB


def _make_reviewable(run_dir: Path, config_text: str) -> None:
    """A run whose review queue holds one score item, `i1`."""
    from autodidact.records import Judgment, Prompt, ReviewItem, Sample
    from autodidact.store import RunStore

    _make_run(run_dir, config_text)
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.add_prompts([Prompt("p", "arithmetic", "train", [{"role": "user", "content": "1+1?"}], reference="2")])
        store.add_samples([Sample("p-0", "p", 1, 0, "2", 1)])
        store.add_judgments([Judgment("p-0", "self", 9.0)])
        store.add_review_items([ReviewItem("i1", 1, "score", "p", "p-0", 9.0)])


@pytest.fixture(scope="session")
def template(tmp_path_factory, tiny_llama) -> Path:
    """The working directory every case starts from (copied per case): an existing run and some plain paths."""
    from autodidact.config import RunConfig, to_yaml

    root = tmp_path_factory.mktemp("bad-template")
    # The config names the run's real location; the placeholder is replaced when the template is copied.
    config = RunConfig(name="existing", output_dir="@TMP@/runs", model={"name": tiny_llama})
    _make_run(root / "runs" / "existing", to_yaml(config))
    _make_run(root / "runs" / "broken_config", to_yaml(config).replace("seed:", "trainingg: {}\nseed:"))
    (root / "runs" / "garbage_db").mkdir()
    (root / "runs" / "garbage_db" / "config.yaml").write_text(to_yaml(config), encoding="utf-8")
    (root / "runs" / "garbage_db" / "run.sqlite").write_bytes(b"this is not an SQLite database\n" * 64)
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "notes.txt").write_text("just a folder\n")
    (root / "a_file.txt").write_text("just a file\n")
    (root / "nonempty_out").mkdir()
    (root / "nonempty_out" / "keep.txt").write_text("keep me\n")
    (root / "existing.yaml").write_text("seed: 1\n")
    # Trained runs: `trained` lost checkpoints/iter-2 (copied without it); `moved` was written by an older
    # autodidact whose absolute paths name another run's folders, which exist (this template's `trained`).
    _make_trained(root / "runs" / "trained", to_yaml(config), {1: "checkpoints/iter-1", 2: "checkpoints/iter-2"}, [1])
    elsewhere = root / "runs" / "trained" / "checkpoints" / "iter-1"
    _make_trained(root / "runs" / "moved", to_yaml(config), {1: str(elsewhere)}, [])
    _make_reviewable(root / "runs" / "reviewable", to_yaml(config))
    return root


@pytest.fixture
def workdir(tmp_path, template, monkeypatch) -> Path:
    work = tmp_path / "work"
    shutil.copytree(template, work)
    for config in work.glob("runs/*/config.yaml"):
        config.write_text(config.read_text().replace("@TMP@", str(work)))
    monkeypatch.chdir(work)
    monkeypatch.setenv("AUTODIDACT_CACHE", str(tmp_path / "cache"))  # a GGUF conversion never touches ~/.cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return work


def snapshot(root: Path) -> dict[str, str]:
    """Every file's sha256 and every folder under `root`, by relative path."""
    tree = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        tree[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def expand(case: dict, places: dict[str, str]) -> list[str]:
    args = list(case["argv"])
    if case.get("preset"):
        args[1:1] = PRESETS[case["preset"]]  # right after the command: the case's own arguments win
    out = []
    for arg in args:
        for name, value in places.items():
            arg = arg.replace("{" + name + "}", value)
        out.append(arg)
    return out


class TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise TookTooLong("the case ran past its time limit (a bad input that was accepted and started a run?)")


def call_in_process(argv: list[str], capsys, seconds: float) -> tuple[int, str]:
    from autodidact.apps import cli

    capsys.readouterr()
    code: int | str | None = 0
    previous = signal.signal(signal.SIGALRM, _alarm)  # a hung case fails instead of stalling the suite
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with mock.patch.object(sys, "argv", ["autodidact", *argv]):
            cli.main()
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return (0 if code is None else code), capsys.readouterr().err


def call_subprocess(argv: list[str], cwd: Path, seconds: float, fsize_limit: int | None = None) -> tuple[int, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "autodidact.apps.cli", *argv]

    def limit_file_size() -> None:  # in the child: a full disk, as writes past the limit fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored, not killed (an ignored signal survives exec)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=seconds,
                          preexec_fn=limit_file_size if fsize_limit else None)
    return proc.returncode, proc.stderr


def _writable(path: Path) -> bool:
    """Whether this process can still change `path` (a probe file in a folder, an append to a file)."""
    try:
        if path.is_dir():
            probe = path / ".write-probe"
            probe.touch()
            probe.unlink()
        else:
            path.open("ab").close()
    except OSError:
        return False
    return True


def _bind_read_only(path: Path) -> bool:
    """Mount `path` over itself read-only (root, where chattr +i is not supported); whether it worked."""
    if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return True


@contextmanager
def read_only(paths: list[Path]) -> Iterator[None]:
    """Make `paths` read-only for the case, root included: `chattr +i` as root (chmod does not stop root), or a
    read-only bind mount where the filesystem has no immutable flag; chmod otherwise; restored afterwards. Where neither works, the case fails under CI and is skipped elsewhere."""
    root, changed, mounted = os.geteuid() == 0, [], []
    try:
        for path in paths:
            mode = path.stat().st_mode
            if root:
                subprocess.run(["chattr", "+i", str(path)], capture_output=True)
                if _writable(path) and _bind_read_only(path):  # a filesystem without the immutable flag
                    mounted.append(path)
            else:
                path.chmod(mode & ~0o222)
            changed.append((path, mode))
        stuck = [str(p) for p in paths if _writable(p)]
        if stuck:
            message = f"cannot make {stuck} read-only here (chattr +i as root, chmod otherwise)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", str(path)], capture_output=True)
        for path, mode in reversed(changed):
            if root:
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
            else:
                path.chmod(mode)


@contextmanager
def locked(store: Path | None, monkeypatch) -> Iterator[None]:
    """Hold the store's write lock from another connection (`BEGIN EXCLUSIVE`) for the case; a write waits
    `BUSY_SECONDS` for it, shortened here so a case takes a second, not thirty."""
    if store is None:
        yield
        return
    import autodidact.store.connection as connection

    monkeypatch.setattr(connection, "BUSY_SECONDS", 0.5)
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.close()  # the transaction is rolled back


def _param(case: dict):
    marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input(case, workdir, generated, tiny_llama, capsys, monkeypatch):
    if case.get("needs") == "bundled_gguf" and not (generated / "truncated.gguf").is_file():
        pytest.skip("the bundled SmolLM2 GGUF is not installed")
    places = {
        "bad": str(BAD),
        "tmp": str(workdir),
        "run": str(workdir / "runs" / "existing"),
        "gen": str(generated),
        "model": tiny_llama,
    }
    argv = expand(case, places)
    before = snapshot(workdir)

    limit = case.get("seconds", 30)
    fsize_limit = case.get("fsize_limit")
    frozen = [workdir / path for path in case.get("readonly", [])]
    store = workdir / case["locked"] if case.get("locked") else None
    with read_only(frozen), locked(store, monkeypatch):
        start = time.perf_counter()
        if case.get("subprocess") or fsize_limit:
            code, stderr = call_subprocess(argv, workdir, limit, fsize_limit)
        else:
            code, stderr = call_in_process(argv, capsys, limit)
        seconds = time.perf_counter() - start

    shown = f"autodidact {' '.join(argv)}\nexit code {code}, stderr:\n{stderr}"
    assert "Traceback" not in stderr, shown
    assert code == 2, shown
    lines = [line for line in stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line\n{shown}"
    message = lines[0]
    for word in case["expect"]:
        assert word.lower() in message.lower(), f"the error does not say {word!r}\n{shown}"
    for word in case.get("absent", []):
        assert word.lower() not in message.lower(), f"the error shows {word!r}\n{shown}"
    # Paths are not advice: a temporary folder named like /tmp/check-1/ must not count as a fix.
    advice = PATH_LIKE.sub("<path>", message.removeprefix("error: "))
    assert FIX_WORDS.search(advice), f"the error suggests no fix\n{shown}"
    assert seconds < limit, f"took {seconds:.1f} s\n{shown}"
    after = snapshot(workdir)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the working directory changed: {changed}\n{shown}"


def test_init_creates_the_missing_folders_of_its_path(tmp_path, capsys):
    """The valid neighbour of the init cases: a path in folders that do not exist yet."""
    from autodidact.config import example_yaml

    target = tmp_path / "new" / "deeper" / "autodidact.yaml"
    code, stderr = call_in_process(["init", str(target)], capsys, 30)
    assert code == 0, stderr
    assert target.read_text(encoding="utf-8") == example_yaml()
    assert sorted(p.name for p in target.parent.iterdir()) == ["autodidact.yaml"]
