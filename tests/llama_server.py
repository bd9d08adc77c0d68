"""A real llama.cpp server for tests (llama-cpp-python's `python -m llama_cpp.server`), and a scripted stub.

`LlamaServer` starts the server on a free port with the bundled SmolLM2 GGUF (or any GGUF), waits until
it lists its model, and stops it. `RESTART_SCRIPT` is what a `model.server.restart_command` runs in the
'merged' reload test: it stops the server whose pid is in a file, waits for the port to free, starts a
new one on the GGUF it is given in the background, records the new pid, and returns.

`StubServer` is a plain `http.server` on a free port whose replies come from a function, for the
faults a real server will not produce on demand (429, 5xx, malformed JSON) and for vLLM's LoRA API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

try:
    import llama_cpp.server.app  # noqa: F401  (the server extra: fastapi, sse-starlette, starlette-context)

    HAVE_LLAMA_SERVER, WHY_NOT = True, ""
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    HAVE_LLAMA_SERVER = False
    WHY_NOT = (f"llama.cpp's server is not importable ({exc}); "
               "install it with pip install 'llama-cpp-python[server]>=0.3'")

needs_llama_server = pytest.mark.skipif(not HAVE_LLAMA_SERVER, reason=WHY_NOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_argv(model: Path | str, port: int) -> list[str]:
    # 2 threads: the test machines have 2 cores; a small context keeps the KV cache small.
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", "1024", "--n_threads", "2", "--verbose", "False"]


def wait_until_listed(url: str, timeout: float = 90.0) -> str:
    """The first model id the server lists, once it answers (the openai client, no retries)."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=2.0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.models.list().data[0].id
        except openai.OpenAIError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no llama.cpp server at {url} after {timeout:g}s") from None
            time.sleep(0.2)


class LlamaServer:
    """One llama.cpp server process; its pid is kept in `pid_file` so a restart script can replace it."""

    def __init__(self, model: Path | str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.workdir = workdir
        self.pid_file = workdir / "server.pid"
        self.log = workdir / "server.log"
        with open(self.log, "ab") as sink:
            self.proc = subprocess.Popen(server_argv(model, self.port), stdin=subprocess.DEVNULL, stdout=sink,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(str(self.proc.pid))
        try:
            self.model_id = wait_until_listed(self.url)
            self._first_completion()
        except (TimeoutError, RuntimeError):
            self.stop()
            raise

    def _first_completion(self) -> None:
        """A few tokens, so that a llama.cpp build that crashes on decoding fails here, saying why."""
        import openai

        client = openai.OpenAI(base_url=self.url, api_key="none", max_retries=0, timeout=60.0)
        try:
            client.completions.create(model=self.model_id, prompt="What is 2 + 2? Answer with just the number.", max_tokens=4)
        except openai.OpenAIError as exc:
            time.sleep(1.0)  # a crashed server is reaped by now
            code = self.proc.poll()
            raise RuntimeError(
                f"the llama.cpp server died on its first completion (exit code {code}; {exc}). A -march=native "
                "build segfaults in llama_decode on CPUs that report AMX/AVX-512: reinstall it as the Makefile "
                "does (CMAKE_ARGS=\"$LLAMA_CMAKE_ARGS\" pip install --no-cache-dir --force-reinstall llama-cpp-python)"
            ) from None

    def restart_command(self) -> str:
        """A `model.server.restart_command` that restarts this server on `{gguf}`."""
        script = self.workdir / "restart.py"
        script.write_text(RESTART_SCRIPT)
        return f"{sys.executable} {script} {{gguf}} {self.port} {self.pid_file} {self.log}"

    def stop(self) -> None:
        """Stop the server now running (the first one, or the one a restart started)."""
        pid = int(self.pid_file.read_text())
        if pid == self.proc.pid:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return
        self.proc.wait(timeout=15)  # stopped by the restart script; reap it
        _stop_pid(pid)


def _stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


RESTART_SCRIPT = f'''
import os, signal, socket, subprocess, sys, time
gguf, port, pid_file, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.kill(int(open(pid_file).read()), signal.SIGTERM)
for _ in range(300):  # until the old server has let go of the port
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) != 0:
            break
    time.sleep(0.1)
argv = {server_argv("MODEL", 0)!r}
argv[argv.index("MODEL")] = gguf
argv[argv.index("0")] = str(port)
with open(log, "ab") as sink:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                            start_new_session=True)
open(pid_file, "w").write(str(proc.pid))
'''


# --- a scripted stub ----------------------------------------------------------------------

Reply = Callable[[str, dict], tuple[int, object]]  # (path, JSON body) -> (status, JSON-able body or raw bytes)


class StubServer:
    """An OpenAI-compatible stub on a free port; `requests` keeps (path, body, headers) of every request."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.requests: list[tuple[str, dict, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                status, content = stub.reply(self.path, body)
                data = content if isinstance(content, bytes) else json.dumps(content).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, top: dict[str, float] | None = None, model: str = "stub") -> dict:
    """A /completions reply with one choice (and first-token alternatives when `top` is given)."""
    logprobs = None
    if top is not None:
        logprobs = {"tokens": [text], "token_logprobs": [0.0], "top_logprobs": [top], "text_offset": [0]}
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
    return {"id": "c", "object": "text_completion", "created": 0, "model": model, "choices": [choice],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def models(*names: str) -> dict:
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "me"} for n in names]}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # On a busy 2-core machine (a llama.cpp server beside us, other jobs) torch's 2-thread pool waits ~10 ms
    # per op for a descheduled thread: one forward of the bundled model takes 3 s instead of 0.15 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
