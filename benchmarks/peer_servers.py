"""llama.cpp's own C++ `llama-server` as a generation peer, fed through the project's OpenAI-compatible engine.

`make llama-server` builds it from the llama.cpp source that the installed llama-cpp-python vendors, with
the Makefile's flags (never -march=native). The bench starts it with one slot per sequence (prompts x
samples), continuous batching on (llama-server's default; passed explicitly), 2 threads, and sends every
prompt at once through `OpenAIEngine` with `n` samples per request: llama-server decodes the prompt once
and copies its state into the n slots (`n_cmpl`), each sampling with its own seed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / ".build" / "llama-server"
DEFAULT_BINARY = BUILD_DIR / "build" / "bin" / "llama-server"


def llama_server_binary() -> tuple[Path | None, str]:
    """(the llama-server executable, "") or (None, why there is none). $LLAMA_SERVER overrides the built one."""
    path = Path(os.environ.get("LLAMA_SERVER") or DEFAULT_BINARY)
    if path.is_file() and os.access(path, os.X_OK):
        return path, ""
    log = BUILD_DIR / "build.log"
    if not log.is_file():
        return None, f"not built: run `make llama-server` (expected {path})"
    errors = [line.strip() for line in log.read_text(errors="replace").splitlines() if "error" in line.lower()]
    last = errors[-1] if errors else "no error line in the log"
    return None, f"`make llama-server` failed ({log.relative_to(ROOT)}: {last[:200]})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(root: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until GET /health answers 200 (503 while the model loads); RuntimeError with the log's tail if it died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").splitlines()[-5:])
            raise RuntimeError(f"llama-server exited with code {proc.returncode}: {tail[-400:]}")
        try:
            with urllib.request.urlopen(f"{root}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama-server not healthy after {timeout:g} s")
        time.sleep(0.2)


@contextmanager
def llama_server(
    binary: Path, gguf: str, slots: int, ctx_per_slot: int, threads: int = 2, timeout: float = 180.0
) -> Iterator[str]:
    """A running llama-server; yields its OpenAI API root ("http://127.0.0.1:PORT/v1"). Stopped on exit."""
    port = _free_port()
    argv = [
        str(binary), "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
        "--threads", str(threads), "--threads-batch", str(threads),
        "--parallel", str(slots), "--ctx-size", str(slots * ctx_per_slot),  # the context is split over the slots
        "--cont-batching", "--no-webui",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "llama-server.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc, log, timeout)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _served_model(api: str) -> str:
    with urllib.request.urlopen(f"{api}/models", timeout=10) as reply:
        return json.load(reply)["data"][0]["id"]


def llama_server_generate(
    binary: Path,
    gguf: str,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
) -> dict:
    """All prompts x n samples at once through `OpenAIEngine` against llama-server.

    Tokens are the engine's count: the tokenizer on each returned text, as the other rows count generated
    ids. Not the replies' `usage.completion_tokens`: for an n > 1 request llama-server's usage covered one
    choice (2,440 against 10,092 tokens of text on the bench workload, 2026-12-07).

    Returns:
        {"tokens", "seconds", "slots", "ctx_per_slot"}.

    Raises:
        RuntimeError: the server did not start, or a request failed.
    """
    from autodidact.engines import SamplingParams
    from autodidact.engines.openai_engine import OpenAIEngine

    longest = max(len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts)
    ctx_per_slot = max(256, 1 << (longest + max_new_tokens + 8).bit_length())  # prompt + new tokens, a power of 2
    slots = len(prompts) * n
    with llama_server(binary, gguf, slots, ctx_per_slot) as api:
        # /completions with the locally rendered chat template: the server sees the prompts the engine sees.
        engine = OpenAIEngine(
            api, _served_model(api), tokenizer=tokenizer, concurrency=len(prompts), timeout=900.0, max_retries=0,
            role="policy",
        )  # fmt: skip
        engine.generate(list(prompts[:2]), SamplingParams(1, temperature, top_p, 8), desc="warm-up")
        start = time.perf_counter()
        outputs = engine.generate(list(prompts), SamplingParams(n, temperature, top_p, max_new_tokens, seed=0))
        seconds = time.perf_counter() - start
    errors = [c.error for cs in outputs for c in cs if c.error]
    if errors:
        raise RuntimeError(f"{len(errors)} of {slots} samples failed: {errors[0]}")
    tokens = sum(c.num_tokens for cs in outputs for c in cs)
    return {"tokens": tokens, "seconds": seconds, "slots": slots, "ctx_per_slot": ctx_per_slot}
