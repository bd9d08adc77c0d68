"""Programmatic verifier judge: built-ins, score mapping, contained errors and hangs, config-time errors."""

from __future__ import annotations

import textwrap
import time

import pytest

from autodidact.config import validate_config
from autodidact.errors import AutodidactError
from autodidact.judges import JudgeItem, build_judge
from autodidact.judges.programmatic import ProgramJudge
from autodidact.records import Prompt
from autodidact.verifiers import exact_match, json_keys, last_number, number_match, python_tests, regex

CHECKS = '''
import math, os

def is_four(prompt, response, reference):
    return response.strip() == "4"

def value(prompt, response, reference):
    return {"bool": True, "high": 1.7, "low": -0.2, "quarter": 0.25, "none": None, "nan": math.nan,
            "text": "yes"}[response]

def boom(prompt, response, reference):
    raise RuntimeError("kaput: " + response)

def hang(prompt, response, reference):
    if response == "loop":
        while True:
            pass
    return True

def die(prompt, response, reference):
    if response == "die":
        os._exit(3)
    return 1.0

def scaled(prompt, response, reference, factor=1.0):
    return factor * len(response) / 10
'''


@pytest.fixture
def checks(tmp_path, monkeypatch):
    """A user module `my_checks` importable by dotted path, as a user's package would be."""
    (tmp_path / "my_checks.py").write_text(CHECKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_checks"


def item(response: str, reference=4, sample_id: str = "s") -> JudgeItem:
    prompt = Prompt("p", "arithmetic", "train", [{"role": "user", "content": "2+2?"}], reference=reference)
    return JudgeItem(sample_id, prompt, response)


# --- built-ins, called directly ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [("  Paris ", "paris", True), ("New   York", "new york", True), ("Paris.", "Paris", False),
     ("b", ["a", "B"], True), ("", "x", False)],
)
def test_exact_match(response, reference, expected):
    assert exact_match("q", response, reference) is expected


def test_exact_match_case_sensitive_and_no_reference():
    assert exact_match("q", "Paris", "paris", case_sensitive=True) is False
    with pytest.raises(ValueError, match="no reference"):
        exact_match("q", "Paris", None)


@pytest.mark.parametrize(
    ("text", "number"),
    [("The answer is 42.", 42.0), ("from 3 to -7", -7.0), ("1,234,567 items", 1234567.0), ("1,2,3", 3.0),
     ("pi is 3.14159", 3.14159), ("2e3", 2000.0), ("none here", None)],
)
def test_last_number(text, number):
    assert last_number(text) == number


def test_number_match():
    assert number_match("q", "2 + 2 = 4", 4) is True
    assert number_match("q", "It is 4.0000001", "4", abs_tol=1e-6) is True
    assert number_match("q", "4, no wait, 5", 4) is False
    assert number_match("q", "four", 4) is False  # no number: a wrong answer, not ungradable
    assert number_match("q", "105", 100, rel_tol=0.1) is True
    with pytest.raises(ValueError, match="not a number"):
        number_match("q", "4", "four")


def test_regex_from_args_or_reference():
    assert regex("q", "Order #123 shipped", None, pattern=r"#\d+") is True
    assert regex("q", "ORDER 7", r"order \d", flags="i") is True
    assert regex("q", " 123 ", None, pattern=r"\d+", fullmatch=True) is True
    assert regex("q", "123 abc", None, pattern=r"\d+", fullmatch=True) is False
    with pytest.raises(ValueError, match="no pattern"):
        regex("q", "x", None)


def test_json_keys():
    assert json_keys("q", '{"name": "Ada", "age": 36}', ["name", "age"]) is True
    assert json_keys("q", 'Here:\n```json\n{"name": "Ada"}\n```', None, keys=["name"]) is True
    assert json_keys("q", '{"name": "Ada"}', ["name", "age"]) is False
    assert json_keys("q", '["name", "age"]', ["name"]) is False  # not an object
    assert json_keys("q", "not json", ["name"]) is False


ADD_TEST = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def test_python_tests_pass_fail_and_limits():
    assert python_tests("q", "def add(a, b):\n    return a + b\n", ADD_TEST) is True
    assert python_tests("q", "Sure!\n```python\ndef add(a, b):\n    return a + b\n```\nDone.", ADD_TEST) is True
    assert python_tests("q", "def add(a, b):\n    return a - b\n", ADD_TEST) is False
    assert python_tests("q", "this is not python", ADD_TEST) is False
    start = time.monotonic()
    assert python_tests("q", "while True:\n    pass\n", ADD_TEST, timeout=1.0) is False
    assert time.monotonic() - start < 3.0
    # 300 MB: refused under a 128 MB address-space limit, allowed under 2 GB.
    hog = "buffer = bytearray(300 * 1024 * 1024)\ndef add(a, b):\n    return a + b\n"
    assert python_tests("q", hog, ADD_TEST, memory_mb=128) is False
    assert python_tests("q", hog, ADD_TEST, memory_mb=2048) is True


# --- the judge: worker processes, score mapping, failures --------------------------------------


def test_builtin_judge_scores_by_reference():
    judge = ProgramJudge("number_match")
    result = judge.judge([item("4", sample_id="a"), item("five", sample_id="b"), item("It's 4.", sample_id="c")])
    judgments = result.judgments
    assert [(j.sample_id, j.judge, j.score, j.error) for j in judgments] == [
        ("a", "program", 10.0, None), ("b", "program", 0.0, None), ("c", "program", 10.0, None)]
    assert result.stats == {"program_timeouts": 0.0}


def test_values_map_to_scores_and_none_or_bad_values_fail(checks):
    responses = ["bool", "high", "low", "quarter", "none", "nan", "text"]
    judgments = ProgramJudge(f"{checks}:value").judge([item(r, sample_id=r) for r in responses]).judgments
    assert [j.score for j in judgments] == [10.0, 10.0, 0.0, 2.5, None, None, None]
    assert [j.error for j in judgments[4:]] == [
        "the program returned None (it could not grade this)",
        "the program returned NaN",
        "returned str, expected bool, float or None",
    ]


def test_raising_program_is_a_failed_judgment(checks):
    judgments = ProgramJudge(f"{checks}:boom").judge([item("a"), item("b")]).judgments
    assert [(j.score, j.error) for j in judgments] == [
        (None, "RuntimeError: kaput: a"), (None, "RuntimeError: kaput: b")]


def test_hanging_program_is_killed_at_its_limit_and_the_next_item_still_judged(checks):
    judge = ProgramJudge(f"{checks}:hang", timeout=1.0)
    start = time.monotonic()
    result = judge.judge([item("loop", sample_id="a"), item("fine", sample_id="b")])
    judgments = result.judgments
    elapsed = time.monotonic() - start
    assert elapsed < 3.0
    assert judgments[0].score is None
    assert judgments[0].error == "the verifier did not finish within judge.program_timeout=1s and was killed"
    assert judgments[1].score == 10.0
    assert result.stats == {"program_timeouts": 1.0}


def test_dying_worker_fails_one_item_and_is_replaced(checks):
    judgments = ProgramJudge(f"{checks}:die").judge([item("die"), item("ok"), item("die"), item("ok")]).judgments
    assert [j.score for j in judgments] == [None, 10.0, None, 10.0]
    assert judgments[0].error == "the verifier process exited with code 3"


def test_program_args_reach_user_function_and_parallel_workers_keep_order(checks):
    responses = ["a" * k for k in range(1, 9)]
    judge = ProgramJudge(f"{checks}:scaled", {"factor": 0.5}, workers=3)
    judgments = judge.judge([item(r, sample_id=str(i)) for i, r in enumerate(responses)]).judgments
    assert [j.sample_id for j in judgments] == [str(i) for i in range(8)]
    assert [j.score for j in judgments] == pytest.approx([0.5 * k for k in range(1, 9)])


def test_python_tests_judge_with_reference_tests():
    items = [item("def add(a, b):\n    return a + b", ADD_TEST, "good"),
             item("def add(a, b):\n    return 0", ADD_TEST, "bad"),
             item("def add(a, b): return a + b", None, "no-tests")]
    judgments = ProgramJudge("python_tests", {"timeout": 2.0}, timeout=5.0).judge(items).judgments
    assert [j.score for j in judgments] == [10.0, 0.0, None]
    assert judgments[2].error == "ValueError: no test code: the prompt's reference must be Python test code (asserts)"


# --- config ---------------------------------------------------------------------------------------


def test_config_builds_the_program_judge(checks):
    config = validate_config({"judge": {"method": "program", "program": f"{checks}:is_four", "program_timeout": 2}})
    judge = build_judge(config.judge, engine=None, tasks={})
    assert isinstance(judge, ProgramJudge)
    assert [j.score for j in judge.judge([item("4"), item("5")]).judgments] == [10.0, 0.0]


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"program": "exact_mach"}, "config: judge.program: 'exact_mach' is neither a built-in (exact_match, "
         "number_match, regex, json_keys, python_tests) nor a dotted path like 'my_pkg.checks:is_valid'. "
         "Did you mean 'exact_match'?"),
        ({}, "config: judge: method 'program' needs judge.program"),
    ],
)
def test_config_time_errors(judge, message):
    with pytest.raises(AutodidactError) as err:
        validate_config({"judge": {"method": "program", **judge}})
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"program": "no_such_package.checks:ok"},
         "judge.program: cannot import module 'no_such_package.checks' "
         "(ModuleNotFoundError: No module named 'no_such_package')"),
        ({"program": "json:no_such_function"}, "judge.program: module 'json' has no attribute 'no_such_function'"),
        ({"program": "regex", "program_args": {"patern": "x"}},
         "judge.program: judge.program_args ['patern'] do not fit 'regex' (got an unexpected keyword argument 'patern')"),
        ({"program": "python_tests", "program_timeout": 4}, "judge.program: python_tests runs each test for up to 5s "
         "but judge.program_timeout is 4s; raise program_timeout above program_args.timeout"),
    ],
)
def test_build_time_errors(judge, message):
    # Config is a leaf that imports no user code: the program is imported and its arguments checked when
    # the judge is built, which a run does before it generates or trains anything.
    config = validate_config({"judge": {"method": "program", **judge}})
    with pytest.raises(AutodidactError) as err:
        build_judge(config.judge, engine=None, tasks={})
    assert str(err.value).startswith(message)


def test_worker_script_does_not_import_torch(checks, tmp_path):
    # The worker starts fast because it imports neither torch nor autodidact.
    probe = tmp_path / "imports.py"
    probe.write_text(textwrap.dedent("""
        import sys
        def heavy(prompt, response, reference):
            return not any(m == "torch" or m.startswith("autodidact") for m in sys.modules)
    """))
    [judgment] = ProgramJudge("imports:heavy").judge([item("x")]).judgments
    assert judgment.score == 10.0


def _listener():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    return server


CONNECT = "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"


def test_generated_code_runs_without_network_where_the_platform_allows_it():
    from autodidact.verifiers import no_network_prefix, python_tests

    server = _listener()
    try:
        code = "```python\n" + CONNECT.format(port=server.getsockname()[1]) + "```"
        reached = python_tests("", code, "pass", timeout=10)
    finally:
        server.close()
    if not no_network_prefix():
        pytest.skip("this platform does not allow an empty network namespace (unshare --net)")
    assert reached is False  # even loopback is unreachable from the namespace


def test_verifier_processes_have_a_memory_limit_and_no_network(tmp_path, monkeypatch):
    from autodidact.judges.programmatic import ProgramJudge
    from autodidact.verifiers import no_network_prefix

    (tmp_path / "hungry.py").write_text(
        "import socket\n"
        "def grab(prompt, response, reference, mb=0, port=0):\n"
        "    if mb:\n"
        "        bytearray(mb * 1024 * 1024)\n"
        "    if port:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
        "    return True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    item = [JudgeItem("s", Prompt("p", "t", "train", [{"role": "user", "content": "q"}]), "r")]
    assert ProgramJudge("hungry:grab", {"mb": 64}, memory_mb=512).judge(item).judgments[0].score == 10.0
    over = ProgramJudge("hungry:grab", {"mb": 1024}, memory_mb=256).judge(item).judgments[0]
    assert over.score is None and "MemoryError" in over.error
    server = _listener()
    try:
        port = server.getsockname()[1]
        allowed = ProgramJudge("hungry:grab", {"port": port}, network=True).judge(item).judgments[0]
        denied = ProgramJudge("hungry:grab", {"port": port}).judge(item).judgments[0]
    finally:
        server.close()
    assert allowed.score == 10.0
    if not no_network_prefix():
        pytest.skip("this platform does not allow an empty network namespace (unshare --net)")
    assert denied.score is None and "Error" in denied.error
