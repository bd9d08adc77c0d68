"""Programmatic verifier judge: a Python function grades each response.

`judge.program` names a built-in (`exact_match`, `number_match`, `regex`,
`json_keys`, `python_tests`; see `autodidact.verifiers`) or any importable
callable by dotted path, `my_pkg.checks:is_valid`, with the signature
`(prompt: str, response: str, reference, **program_args) -> bool | float | None`.
The reference is `item.prompt.reference`. Score = 10 x value: a bool gives
0 or 10, a float is clipped to [0, 1] first. None, NaN, an exception or a
timeout give a failed judgment (`score=None`) with the reason in `error`.

Every call runs in a worker process (a plain `python verifiers.py`,
which starts in milliseconds because it imports neither torch nor this
package). A verifier that has not answered within `timeout` seconds is
killed with its whole process group (including any test subprocess it
started) and a fresh worker takes the next item, so a verifier that loops
forever costs one timeout, never the run.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from autodidact import verifiers
from autodidact.errors import AutodidactError
from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.progress import progress_bar
from autodidact.records import Judgment
from autodidact.verifiers import BUILTINS, load_program, no_network_prefix

WORKER_SCRIPT = verifiers.__file__
STARTUP_TIMEOUT = 60.0  # seconds for a worker to import the verifier's module


def check_program(spec: str, args: Mapping[str, Any] | None = None, timeout: float | None = None) -> None:
    """Check at config time that a program resolves and accepts `args`.

    Raises:
        ValueError: unknown built-in, module that cannot be imported, missing
            attribute, arguments the function does not take, or a `python_tests`
            time limit that does not fit inside `timeout`.
    """
    args = dict(args or {})
    program = load_program(spec)
    try:
        inspect.signature(program).bind("prompt", "response", None, **args)
    except TypeError as exc:
        raise ValueError(f"judge.program_args {sorted(args)} do not fit '{spec}' ({exc})") from None
    except ValueError:  # no signature to inspect (some builtins, C functions): let the call tell
        pass
    try:
        json.dumps(args)
    except (TypeError, ValueError):
        raise ValueError("judge.program_args must be plain YAML values (strings, numbers, lists, mappings)") from None
    if spec == "python_tests" and timeout is not None:
        inner = float(args.get("timeout", inspect.signature(program).parameters["timeout"].default))
        if inner >= timeout:
            raise ValueError(
                f"python_tests runs each test for up to {inner:g}s but judge.program_timeout is {timeout:g}s; "
                "raise program_timeout above program_args.timeout"
            )


def _child_env() -> dict[str, str]:
    """The parent's environment, with its import path, so the worker imports what the parent can."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(os.getcwd() if p == "" else p for p in sys.path)
    return env


class _Worker:
    """One verifier process, fed one request at a time over a pipe."""

    def __init__(self, program: str, args: Mapping[str, Any], memory_mb: int = 0, network: bool = True):
        isolation = [] if network else no_network_prefix()
        self.argv = [*isolation, sys.executable, WORKER_SCRIPT, program, json.dumps(dict(args))]
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.broken: str | None = None  # why the worker cannot start; reported for every item

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env() | {"AUTODIDACT_VERIFIER_MEMORY_MB": str(self.memory_mb)},
            start_new_session=True,  # its own process group: a kill reaches its children too
        )
        self.buffer = b""
        reply = self._read(STARTUP_TIMEOUT)
        if not isinstance(reply, dict) or "error" in reply:
            self.kill()
            self.broken = reply["error"] if isinstance(reply, dict) else "the verifier process did not start"

    def _read(self, timeout: float) -> dict[str, Any] | str:
        """The next reply, or "timeout" when none came in time, or "exited" when the worker closed its output."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return "timeout"
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return "exited"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def call(self, request: str, timeout: float) -> tuple[dict[str, Any], bool]:
        """The reply to one JSON request line, and whether the call timed out."""
        if self.proc is None:
            self._start()
        if self.broken:
            return {"error": self.broken}, False
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(request.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died; the read below reports how
        reply = self._read(timeout)
        if isinstance(reply, dict):
            return reply, False
        if reply == "timeout":
            self.kill()
            reason = f"the verifier did not finish within judge.program_timeout={timeout:g}s and was killed"
            return {"error": reason}, True
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its output but lingers
            code = None
        self.kill()
        return {"error": f"the verifier process exited with code {code}"}, False

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc = None

    def close(self) -> None:
        """Let the worker exit on end of input; kill it if it does not."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=2)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            pass
        self.kill()


def program_judgment(sample_id: str, judge: str, reply: Mapping[str, Any]) -> Judgment:
    """A judgment from a worker reply: 10 x the value, or None with the reason."""
    if "error" in reply:
        return Judgment(sample_id, judge, None, error=str(reply["error"]))
    value = reply["value"]
    raw = json.dumps(value)
    if value is None:
        return Judgment(sample_id, judge, None, raw=raw, error="the program returned None (it could not grade this)")
    if isinstance(value, bool):
        return Judgment(sample_id, judge, 10.0 if value else 0.0, raw=raw)
    if math.isnan(value):
        return Judgment(sample_id, judge, None, raw=raw, error="the program returned NaN")
    return Judgment(sample_id, judge, 10.0 * min(1.0, max(0.0, value)), raw=raw)


class ProgramJudge:
    """Grades with a Python verifier, each call in a worker process killed at `timeout` seconds.

    Args:
        program: a built-in name or `module:function`.
        args: keyword arguments passed to every call (`judge.program_args`).
        timeout: seconds one call may take (`judge.program_timeout`).
        workers: verifier processes run in parallel (`judge.program_workers`).
        memory_mb: address-space limit of each verifier process (`judge.program_memory_mb`; 0 = none).
        network: whether verifier processes may use the network (`judge.program_network`); without it
            they run in an empty network namespace where the platform allows it.

    A call's `stats`: `program_timeouts`, how many of its verifier calls were killed.
    """

    name = "program"
    relative = False

    def __init__(
        self,
        program: str,
        args: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        workers: int = 1,
        memory_mb: int = 2048,
        network: bool = False,
    ):
        try:
            check_program(program, args, timeout)
        except ValueError as exc:
            raise AutodidactError(f"judge.program: {exc}") from None
        self.program = program
        self.args = dict(args or {})
        self.timeout = timeout
        self.workers = workers
        self.memory_mb, self.network = memory_mb, network

    def judge(self, items: Sequence[JudgeItem]) -> JudgeResult:
        """One judgment per item from the verifier's reply, with how many calls timed out."""
        judgments: list[Judgment | None] = [None] * len(items)
        pending = iter(range(len(items)))
        lock = threading.Lock()
        timeouts = 0

        def drain(advance) -> None:
            nonlocal timeouts
            worker = _Worker(self.program, self.args, self.memory_mb, self.network)
            try:
                while True:
                    with lock:
                        index = next(pending, None)
                    if index is None:
                        return
                    item = items[index]
                    try:
                        request = json.dumps(
                            {"prompt": item.prompt.text, "response": item.response, "reference": item.prompt.reference}
                        )
                    except (TypeError, ValueError):
                        reply, timed_out = {"error": "the prompt's reference is not JSON-serialisable"}, False
                    else:
                        reply, timed_out = worker.call(request, self.timeout)
                    judgments[index] = program_judgment(item.sample_id, self.name, reply)
                    with lock:
                        timeouts += timed_out
                    advance(1)
            finally:
                worker.close()

        n_workers = max(1, min(self.workers, len(items)))
        with progress_bar("judging (program)", total=len(items), unit="samples") as advance:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                for future in [pool.submit(drain, advance) for _ in range(n_workers)]:
                    future.result()
        assert all(j is not None for j in judgments)
        return JudgeResult(judgments, {"program_timeouts": float(timeouts)})  # type: ignore[arg-type]


__all__ = ["BUILTINS", "ProgramJudge", "check_program", "program_judgment"]
