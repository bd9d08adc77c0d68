"""The review server's guard: token beyond loopback, no file read by path, safe headers, and 200 requests at once."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import random
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from test_review import build_run, pair_item, review_client, score_item, serving

from autodidact.apps.review.app import create_app, serve
from autodidact.apps.review.cli import review_command
from autodidact.apps.review.guard import TOKEN_COOKIE, check_serving, is_loopback
from autodidact.errors import AutodidactError
from autodidact.review import agreement
from autodidact.store import RunStore

TOKEN = "s3cret-Token_for.tests~0123456789"
SECRET = "do-not-serve-this-7f3a"  # content of files beside and inside the run directory


def _run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    build_run(run_dir, [score_item("i1", "p0-s0", 7), score_item("i2", "p0-s1", 3)])
    return run_dir


# --- who may connect -------------------------------------------------------------


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False), ("", False),
])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_any_host_but_loopback_needs_a_strong_token(tmp_path):
    check_serving("127.0.0.1", None)
    check_serving("0.0.0.0", TOKEN)
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(AutodidactError, match=r"needs a token: pass --token TOKEN \(or set AUTODIDACT_REVIEW"):
            check_serving(host, None)
    for weak in ("", "short", "has spaces in it, sixteen+", "semi;colon-0123456789"):
        with pytest.raises(AutodidactError, match="at least 16 characters from"):
            check_serving("0.0.0.0", weak)
    with pytest.raises(AutodidactError, match="at least 16 characters"):
        create_app(_run(tmp_path), token="short")
    # The command and serve() refuse before anything listens.
    with pytest.raises(AutodidactError, match="--token"):
        review_command(tmp_path / "run", host="0.0.0.0")
    with pytest.raises(AutodidactError, match="--token"):
        serve(tmp_path / "run", host="0.0.0.0", port=1)


def test_cli_takes_the_token_from_the_option_or_the_environment_and_never_prints_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from autodidact.apps.cli import app

    served = []
    monkeypatch.setattr("autodidact.apps.review.app.serve", lambda run_dir, **kwargs: served.append(kwargs))
    monkeypatch.delenv("AUTODIDACT_REVIEW_TOKEN", raising=False)
    run_dir = str(_run(tmp_path))
    runner = CliRunner()
    args = ["review", run_dir, "--host", "0.0.0.0", "--port", "1"]

    refused = runner.invoke(app, args)
    assert isinstance(refused.exception, AutodidactError) and "pass --token TOKEN" in str(refused.exception)
    weak = runner.invoke(app, args, env={"AUTODIDACT_REVIEW_TOKEN": "weak"})
    assert isinstance(weak.exception, AutodidactError) and "at least 16 characters" in str(weak.exception)
    assert served == []
    from_env = runner.invoke(app, args, env={"AUTODIDACT_REVIEW_TOKEN": TOKEN})
    from_option = runner.invoke(app, [*args, "--token", TOKEN])
    assert from_env.exit_code == from_option.exit_code == 0, (from_env.output, from_option.output)
    assert served == [{"host": "0.0.0.0", "port": 1, "min_ratings": 5, "token": TOKEN}] * 2
    assert "?token=TOKEN" in from_env.output and TOKEN not in from_env.output + from_option.output
    assert runner.invoke(app, ["review", run_dir, "--port", "1"]).exit_code == 0  # loopback: no token needed
    assert served[-1]["token"] is None and served[-1]["host"] == "127.0.0.1"


def test_token_is_required_on_every_request_and_moves_from_query_to_cookie(tmp_path):
    run_dir = _run(tmp_path)
    store = RunStore(run_dir / "run.sqlite")
    client = TestClient(create_app(run_dir, token=TOKEN), base_url="http://192.168.1.5:8765")  # any Host

    missing = client.get("/")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/status").status_code == 401
    assert client.post("/rate", data={"item_id": "i1", "value": "5"}).status_code == 401
    for wrong in ({"params": {"token": TOKEN[:-1]}}, {"params": {"token": TOKEN + "x"}},
                  {"headers": {"authorization": "Bearer nope-nope-nope-nope"}},
                  {"headers": {"cookie": f"{TOKEN_COOKIE}={TOKEN.upper()}"}}):
        assert client.get("/", **wrong).status_code == 403, wrong
    assert client.post("/rate", data={"item_id": "i1", "value": "5"},
                       headers={"cookie": f"{TOKEN_COOKIE}=wrong-wrong-wrong-wrong"}).status_code == 403
    assert store.ratings() == []

    assert client.get("/api/status", headers={"authorization": f"Bearer {TOKEN}"}).json()["pending"] == 2

    first = client.get("/", params={"item": "i2", "token": TOKEN}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/?item=i2"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert cookie == f"{TOKEN_COOKIE}={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
    page = client.get("/?item=i2", headers={"cookie": f"{TOKEN_COOKIE}={TOKEN}"})
    assert page.status_code == 200 and "answer p0-s1" in page.text and TOKEN not in page.text
    rated = client.post("/rate", data={"item_id": "i2", "value": "4"}, follow_redirects=False,
                        headers={"cookie": f"other=1; {TOKEN_COOKIE}={TOKEN}"})
    assert rated.status_code == 303 and TOKEN not in rated.headers["location"]
    assert [(r.item_id, r.value) for r in store.ratings()] == [("i2", 4.0)]
    # A crafted path cannot turn the token redirect into a jump to another site.
    for path in ("//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example"):
        location = client.get(path, params={"token": TOKEN}, follow_redirects=False).headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert urlsplit(location).netloc == ""


def test_without_token_only_loopback_host_names_are_answered(tmp_path):
    run_dir = _run(tmp_path)
    app = create_app(run_dir)
    for base in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765", "http://127.0.0.1"):
        assert TestClient(app, base_url=base).get("/").status_code == 200, base
    for base in ("http://evil.example:8765", "http://testserver", "http://192.168.1.5:8765", "http://127.0.0.1.nip.io"):
        response = TestClient(app, base_url=base).get("/api/status")
        assert response.status_code == 421 and "loopback" in response.text, base
    # A loopback page given a token asks for it too.
    assert TestClient(create_app(run_dir, token=TOKEN), base_url="http://127.0.0.1").get("/").status_code == 401


def test_every_response_forbids_scripts_framing_and_sniffing(tmp_path):
    run_dir = _run(tmp_path)
    client = review_client(run_dir)
    responses = [client.get("/"), client.get("/api/status"), client.get("/nowhere"), client.get("/?item=zzz"),
                 client.post("/rate", data={"item_id": "i1", "value": "5"}, follow_redirects=False),
                 TestClient(create_app(run_dir)).get("/"),  # refused Host
                 TestClient(create_app(run_dir, token=TOKEN), base_url="http://127.0.0.1").get("/")]  # no token
    assert [r.status_code for r in responses] == [200, 200, 404, 404, 303, 421, 401]
    for response in responses:
        csp = response.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'none'", "style-src 'unsafe-inline'", "img-src data:",
                          "frame-ancestors 'none'"):
            assert directive in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert client.post("/rate", content=b"x" * 70_000,
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 413


# --- nothing is read from disk by path -------------------------------------------


def _raw_get(url: str, target: str, method: str = "GET", body: bytes = b"") -> tuple[int, bytes]:
    """Send `target` as the request line byte for byte (no client normalises '..'); return status and body."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_no_request_path_reads_a_file(tmp_path):
    run_dir = _run(tmp_path)
    (tmp_path / "secret.txt").write_text(SECRET)
    (run_dir / "notes.txt").write_text(SECRET)
    passwd = Path("/etc/passwd").read_bytes()[:20]
    long_id = "a" * 5000
    cases = [
        ("/../../etc/passwd", {400, 404}), ("/%2e%2e/%2e%2e/etc/passwd", {404}), ("/..%2f..%2fetc%2fpasswd", {404}),
        ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", {404}), ("//etc/passwd", {404}), ("/etc/passwd", {404}),
        ("/static/../../../etc/passwd", {400, 404}), ("/../secret.txt", {400, 404}), ("/notes.txt", {404}),
        ("/run.sqlite", {404}), ("/config.yaml", {404}), ("/api/../notes.txt", {400, 404}),
        ("/?item=../../etc/passwd", {404}), ("/?item=%2Fetc%2Fpasswd", {404}),
        ("/?item=" + str(tmp_path / "secret.txt"), {404}),
        ("/?rated=../secret.txt", {404}), ("/?item=..%5C..%5Cwindows%5Cwin.ini", {404}), (f"/?item={long_id}", {404}),
        ("/?item=" + "b" * 100_000, {400, 404, 414, 431}),  # or refused by the HTTP parser before the app
        ("http://127.0.0.1/../../etc/passwd", {400, 404}),
    ]
    posts = [f"item_id={name}&value=5".encode() for name in
             ("../../etc/passwd", "%2Fetc%2Fpasswd", "..%2Fsecret.txt", long_id)]
    with serving(create_app(run_dir)) as url:
        for target, allowed in cases:
            status, body = _raw_get(url, target)
            assert status in allowed, (target[:80], status, body[:200])
            assert SECRET.encode() not in body and passwd not in body and b"SQLite format" not in body, target[:80]
        for body in posts:
            status, answer = _raw_get(url, "/rate", "POST", body)
            assert status == 404 and SECRET.encode() not in answer and passwd not in answer
        assert _raw_get(url, "/")[0] == 200  # the server is still fine
    assert len(cases) == 20 and len(posts) == 4


# --- 200 requests at once -----------------------------------------------------------


def _load_run(tmp_path: Path) -> tuple[Path, dict[str, float]]:
    """120 items (60 score items at checkpoint 1, 60 pairs at checkpoint 2) and the ratings of 100 of them."""
    rng = random.Random(0)
    items = [score_item(f"s{k:02d}", f"p{k % 4}-s{k % 3}", rng.uniform(0, 10)) for k in range(60)]
    items += [pair_item(f"q{k:02d}", f"p{k % 4}-s0", f"p{k % 4}-s1", *rng.sample(range(11), 2), iteration=2)
              for k in range(60)]
    run_dir = tmp_path / "run"
    build_run(run_dir, items).close()
    ratings = {f"s{k:02d}": float(rng.randint(0, 10)) for k in range(50)}
    ratings |= {f"q{k:02d}": rng.choice([0.0, 0.5, 1.0]) for k in range(50)}
    return run_dir, ratings


def test_200_concurrent_requests_get_no_error_and_lose_no_rating(tmp_path):
    run_dir, ratings = _load_run(tmp_path)
    requests = [("POST", "/rate", urlencode({"item_id": i, "value": v})) for i, v in ratings.items()]
    requests += [("GET", "/", None)] * 50 + [("GET", "/api/status", None)] * 50
    random.Random(1).shuffle(requests)
    assert len(requests) == 200
    start_together = threading.Barrier(len(requests), timeout=60)

    with serving(create_app(run_dir, min_ratings=5)) as url:
        port = urlsplit(url).port

        def send(request: tuple[str, str, str | None]) -> tuple[int, bytes, float]:
            method, path, body = request
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            start_together.wait()
            began = time.perf_counter()
            try:
                conn.request(method, path, body=body,
                             headers={"content-type": "application/x-www-form-urlencoded"} if body else {})
                response = conn.getresponse()
                return response.status, response.read(), time.perf_counter() - began
            finally:
                conn.close()

        began = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [pool.submit(send, r) for r in requests]
            outcomes = [f.exception() or f.result() for f in futures]
        seconds = time.perf_counter() - began
        after = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        after.request("GET", "/api/status")
        status = json.loads(after.getresponse().read())
        after.close()

    errors = [(r, o) for r, o in zip(requests, outcomes, strict=True)
              if isinstance(o, BaseException) or o[0] != (303 if r[0] == "POST" else 200)]
    latencies = sorted(o[2] for o in outcomes if not isinstance(o, BaseException))
    with RunStore(run_dir / "run.sqlite") as store:
        stored = store.ratings()
        items = store.review_items()
        lost = set(ratings) - {r.item_id for r in stored}
        print(f"\n200 concurrent requests: {len(errors)} errors, {seconds:.2f}s, "
              f"latency median {latencies[len(latencies) // 2] * 1000:.0f} ms max {latencies[-1] * 1000:.0f} ms, "
              f"{len(lost)} ratings lost")
        assert errors == []
        assert len(stored) == len(ratings) == 100 and not lost
        assert {r.item_id: (r.value, r.source) for r in stored} == {i: (v, "web") for i, v in ratings.items()}
        # The figures shown and stored are those of all 100 ratings, whichever request committed last.
        assert status["pending"] == 20
        for checkpoint, iteration in zip(status["checkpoints"], (1, 2), strict=True):
            expected = agreement([i for i in items if i.iteration == iteration], stored, 5)
            assert checkpoint["rated"] == 50 and checkpoint["total"] == 60
            assert {k: checkpoint[k] for k in expected} == expected
            assert {k: store.metric(iteration, k) for k in expected} == expected
        assert expected["human_kappa"] is not None
    for outcome, request in zip(outcomes, requests, strict=True):
        if request[1] == "/":
            assert b"Human review" in outcome[1]
