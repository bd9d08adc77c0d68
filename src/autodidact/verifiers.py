"""Built-in programmatic verifiers, and the worker loop that runs any verifier in a child process.

Standard library only, and no `autodidact` imports: the judge starts this file
as a script (`python program_builtins.py`), so a worker is up in tens of
milliseconds instead of paying for torch and transformers.

A verifier is `(prompt, response, reference, **program_args) -> bool | float | None`.
A built-in raises `ValueError` when it cannot grade (no reference, no pattern):
the judge records the message as the failed judgment's reason.

Worker protocol, one JSON object per line: the parent writes
`{"prompt", "response", "reference"}` to stdin; the worker answers
`{"value": v}` or `{"error": "Type: message"}` on its protocol channel. The
verifier's own prints go to stderr so they cannot corrupt the channel.
"""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

# --- built-in verifiers ------------------------------------------------------------


def _normalise(text: str, case_sensitive: bool) -> str:
    text = " ".join(str(text).split())
    return text if case_sensitive else text.casefold()


def exact_match(prompt: str, response: str, reference: Any, case_sensitive: bool = False) -> bool:
    """The response equals the reference (or one of a list of references) after collapsing whitespace."""
    if reference is None:
        raise ValueError("no reference answer for this prompt")
    accepted = reference if isinstance(reference, list) else [reference]
    got = _normalise(response, case_sensitive)
    return any(got == _normalise(str(r), case_sensitive) for r in accepted)


# Thousands commas only in groups of three ("1,234"), so "1,2,3" reads as three numbers.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


def last_number(text: str) -> float | None:
    """The last number written in `text`, or None when there is none."""
    matches = _NUMBER.findall(text)
    return float(matches[-1].replace(",", "")) if matches else None


def number_match(prompt: str, response: str, reference: Any, abs_tol: float = 1e-6, rel_tol: float = 0.0) -> bool:
    """The last number in the response equals the reference number (within the tolerances).

    A response with no number did not answer: False, not None.
    """
    if reference is None:
        raise ValueError("no reference number for this prompt")
    expected = reference if isinstance(reference, (int, float)) else last_number(str(reference))
    if expected is None:
        raise ValueError(f"reference {reference!r} is not a number")
    got = last_number(response)
    return got is not None and math.isclose(got, float(expected), rel_tol=rel_tol, abs_tol=abs_tol)


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def regex(
    prompt: str, response: str, reference: Any, pattern: str | None = None, flags: str = "", fullmatch: bool = False
) -> bool:
    """The response matches `pattern` (from program_args, else the reference).

    `flags` is any of "imsx"; `fullmatch` requires the whole (stripped) response to match.
    """
    pattern = pattern if pattern is not None else reference
    if not isinstance(pattern, str):
        raise ValueError("no pattern: set judge.program_args.pattern or give each prompt a string reference")
    compiled = re.compile(pattern, sum((_FLAGS[f] for f in flags), 0))
    return bool(compiled.fullmatch(response.strip()) if fullmatch else compiled.search(response))


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def code_block(response: str, languages: tuple[str, ...]) -> str:
    """The first fenced block tagged with one of `languages` (or untagged), else the whole response."""
    for tag, body in _FENCE.findall(response):
        if tag.lower() in languages or not tag:
            return body
    return response


def json_keys(prompt: str, response: str, reference: Any, keys: list[str] | None = None) -> bool:
    """The response (or its ```json block) parses as a JSON object that has every required key.

    Keys come from program_args `keys`, else the reference (a list of names).
    """
    required = keys if keys is not None else reference
    if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
        raise ValueError("no key list: set judge.program_args.keys or give each prompt a list of keys as reference")
    try:
        parsed = json.loads(code_block(response, ("json",)))
    except ValueError:
        return False
    return isinstance(parsed, dict) and all(k in parsed for k in required)


_LIMITS = """import resource, runpy, sys
mem = {memory} * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024, 16 * 1024 * 1024))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
runpy.run_path(sys.argv[1], run_name="__main__")
"""


_NO_NETWORK: list[str] | None = None


def no_network_prefix() -> list[str]:
    """`["unshare", "--net"]` where this platform lets us start a process in an empty network namespace, else [].

    The child then has no network at all (not even loopback). Checked once per
    process: `unshare` needs a Linux kernel that allows it for this user.
    """
    global _NO_NETWORK
    if _NO_NETWORK is None:
        _NO_NETWORK = []
        if sys.platform.startswith("linux"):
            try:
                ok = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                _NO_NETWORK = ["unshare", "--net"]
    return list(_NO_NETWORK)


def python_tests(prompt: str, response: str, reference: Any, timeout: float = 5.0, memory_mb: int = 512) -> bool:
    """The generated code followed by the reference test code exits with status 0.

    Runs `python -I` in a fresh temporary directory with a wall-time limit
    (`timeout` seconds; then it and every process it started are killed), a
    CPU-time limit and an address-space limit of `memory_mb`, set with
    `resource.setrlimit` in the child, and no network where the platform
    allows it (`no_network_prefix`). This bounds runaway code; it is not a
    full sandbox: the code runs as your user (use a container for untrusted models).
    The code is the response's first ```python block, else the whole response.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError("no test code: the prompt's reference must be Python test code (asserts)")
    source = code_block(response, ("python", "py", "python3")) + "\n\n" + reference + "\n"
    with tempfile.TemporaryDirectory(prefix="autodidact-tests-") as tmp:
        path = os.path.join(tmp, "solution_test.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        limits = _LIMITS.format(memory=int(memory_mb), cpu=math.ceil(timeout) + 1)
        child = subprocess.Popen(
            [*no_network_prefix(), sys.executable, "-I", "-c", limits, path],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"},
            start_new_session=True,  # its own process group: whatever it spawned dies with it
        )
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()
    return code == 0


# One record per built-in: the name in `judge.program` -> the function.
BUILTINS: dict[str, Callable[..., bool | float | None]] = {
    "exact_match": exact_match,
    "number_match": number_match,
    "regex": regex,
    "json_keys": json_keys,
    "python_tests": python_tests,
}


def load_program(spec: str) -> Callable[..., Any]:
    """A built-in by name, or a callable by dotted path `package.module:function`.

    Raises:
        ValueError: unknown name, module not importable, or attribute missing / not callable.
    """
    if spec in BUILTINS:
        return BUILTINS[spec]
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        close = difflib.get_close_matches(spec, BUILTINS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"'{spec}' is neither a built-in ({', '.join(BUILTINS)}) nor a dotted path like "
            f"'my_pkg.checks:is_valid'.{hint}"
        )
    return import_dotted(spec)


def import_dotted(spec: str) -> Callable[..., Any]:
    """The callable named by `package.module:attr` (attr may be dotted).

    Raises:
        ValueError: module not importable, attribute missing, or not callable.
    """
    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error of user code
        raise ValueError(f"cannot import module '{module_name}' ({type(exc).__name__}: {exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module '{module_name}' has no attribute '{attr}'")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"'{spec}' is not callable")
    return target


# --- worker loop ---------------------------------------------------------------------


def _as_value(value: Any) -> dict[str, Any]:
    """The verifier's return value as a protocol message (bool, float or None only)."""
    if value is None or isinstance(value, bool):
        return {"value": value}
    try:
        return {"value": float(value)}
    except (TypeError, ValueError):
        return {"error": f"returned {type(value).__name__}, expected bool, float or None"}


def serve(spec: str, args: dict[str, Any]) -> None:
    """Answer verification requests from stdin until it closes."""
    memory_mb = int(os.environ.get("AUTODIDACT_VERIFIER_MEMORY_MB", "0"))
    if memory_mb > 0:  # before the user's module is imported: its imports count too
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the verifier's prints go to stderr, never into the channel
    sys.stdout = sys.stderr
    try:
        program = load_program(spec)
    except ValueError as exc:
        channel.write(json.dumps({"error": str(exc)}) + "\n")
        channel.flush()
        return
    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = _as_value(program(request["prompt"], request["response"], request["reference"], **args))
        except Exception as exc:  # a verifier's error is a failed judgment, not a crashed run
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        channel.write(json.dumps(reply) + "\n")
        channel.flush()


if __name__ == "__main__":
    # Run as a script, this file's folder heads sys.path; drop it so that its
    # sibling modules cannot shadow the user's (the parent passes its own path).
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    serve(sys.argv[1], json.loads(sys.argv[2]))
