"""User-data and chat-log sources: reading rows, mapping fields, splits, verifiers and bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from autodidact.config import FileSourceConfig, LogsSourceConfig
from autodidact.errors import AutodidactError
from autodidact.records import Prompt
from autodidact.tasks import Task
from autodidact.tasks.files import FileTask
from autodidact.tasks.logs import LogsTask
from autodidact.tasks.row_checks import RowErrors, split_heldout
from autodidact.tasks.rows import BadRow, read_rows

DATA = Path(__file__).parents[1] / "data" / "sources"


def _file_task(path: Path | str, **fields: object) -> FileTask:
    return FileTask(FileSourceConfig(name=fields.pop("name", "qa"), path=str(path), **fields))


def _build(task: FileTask | LogsTask, seed: int = 0) -> tuple[list[Prompt], list[Prompt]]:
    return task.build(train_size=1, heldout_size=1, seed=seed)  # sizes are ignored by file sources


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- reading rows --------------------------------------------------------------------


def test_read_rows_jsonl_numbers_lines_and_skips_blank_ones() -> None:
    rows = list(read_rows(str(DATA / "good.jsonl")))
    assert [n for n, _ in rows] == [1, 2, 3, 5, 6]  # line 4 is blank
    assert rows[0][1] == {"prompt": "What is the capital of France?", "reference": "Paris"}


def test_read_rows_csv_gives_the_line_each_row_starts_on() -> None:
    rows = list(read_rows(str(DATA / "good.csv")))
    assert [n for n, _ in rows] == [2, 3, 5, 6]  # row q2 spans lines 3-4 (a quoted newline)
    question = "What is 2 + 2?\nAnswer with a number."
    assert rows[1][1] == {"id": "q2", "question": question, "answer": "4", "split": "heldout"}


def test_read_rows_marks_broken_json_lines_without_stopping() -> None:
    rows = list(read_rows(str(DATA / "bad_json.jsonl")))
    assert [(n, isinstance(r, BadRow)) for n, r in rows] == [(1, False), (2, True), (3, False), (4, True), (5, False)]
    assert rows[1][1] == BadRow("not valid JSON (Expecting value at column 32)")


def test_read_rows_marks_a_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "one"}\n{"prompt": "caf\xe9"}\n{"prompt": "three"}\n')
    rows = list(read_rows(str(path)))
    assert rows[0] == (1, {"prompt": "one"}) and rows[2] == (3, {"prompt": "three"})
    assert rows[1] == (2, BadRow("not UTF-8 text (byte 0xe9 at column 16); save the file as UTF-8"))


def test_read_rows_csv_non_utf8_and_wrong_field_count_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,reference\nok,1\ncaf\xe9,2\ntoo,many,fields\nfine,4\n")
    assert list(read_rows(str(path))) == [
        (2, {"prompt": "ok", "reference": "1"}),
        (3, BadRow("not UTF-8 text; save the file as UTF-8")),
        (4, BadRow("has 3 fields but the header has 2")),
        (5, {"prompt": "fine", "reference": "4"}),
    ]


def test_read_rows_strips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt\nhello\n")
    assert list(read_rows(str(path))) == [(2, {"prompt": "hello"})]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "the file is empty"),
        ("blank.jsonl", b"\n  \n", "the file is empty (no JSON lines)"),
        ("empty.csv", b"\n", "the file is empty (no header line)"),
        ("header.csv", b"prompt,reference\n", "the file has a header but no rows"),
        ("twice.csv", b"prompt,prompt\na,b\n", "the header repeats column(s) prompt"),
        ("notes.txt", b"hello\n", "unsupported file type '.txt'; use .jsonl, .csv, .parquet"),
        ("fake.parquet", b"not parquet", "not a readable Parquet file"),
    ],
)
def test_read_rows_refuses_unusable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AutodidactError, match=re.escape(message)) as caught:
        list(read_rows(str(path)))
    assert str(path) in str(caught.value)


def test_read_rows_empty_fixture_file() -> None:
    with pytest.raises(AutodidactError, match=r"empty\.jsonl: the file is empty"):
        read_rows(str(DATA / "empty.jsonl"))


def test_read_rows_missing_path_is_an_error_at_call_time() -> None:
    with pytest.raises(AutodidactError, match=r"nope\.jsonl: no such file or directory; fix the path"):
        read_rows(str(DATA / "nope.jsonl"))


def test_read_rows_hub_name_offline_says_network_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AutodidactError, match=r"nobody/no-such-dataset: no such file or directory, .*need network"):
        read_rows("nobody/no-such-dataset")


def test_read_rows_parquet_and_saved_datasets(tmp_path: Path) -> None:
    import datasets

    records = [{"prompt": "a", "messages": _user("a")}, {"prompt": "b", "messages": _user("b")}]
    datasets.Dataset.from_list(records).to_parquet(str(tmp_path / "x.parquet"))
    assert list(read_rows(str(tmp_path / "x.parquet"))) == [(1, records[0]), (2, records[1])]

    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "one"))
    assert list(read_rows(str(tmp_path / "one"))) == [(1, records[0]), (2, records[1])]

    splits = datasets.DatasetDict(
        train=datasets.Dataset.from_list(records), test=datasets.Dataset.from_list(records[1:])
    )
    splits.save_to_disk(str(tmp_path / "dict"))
    assert list(read_rows(str(tmp_path / "dict"), split="test")) == [(1, records[1])]
    with pytest.raises(AutodidactError, match="no split 'validation'; set split to one of: train, test"):
        read_rows(str(tmp_path / "dict"), split="validation")
    with pytest.raises(AutodidactError, match="not one written by datasets' save_to_disk"):
        read_rows(str(tmp_path))


def test_row_errors_refuses_above_the_limit_naming_file_lines_and_key() -> None:
    errors = RowErrors("data.jsonl", max_bad_rows=4, source="qa")
    for line in (3, 5, 8, 13):
        errors.add(line, "bad")
    assert errors.skipped == [(3, "bad"), (5, "bad"), (8, "bad"), (13, "bad")]
    with pytest.raises(AutodidactError) as caught:
        errors.add(21, "worse")
    assert str(caught.value) == (
        "source 'qa': data.jsonl: more than max_bad_rows=4 rows are bad (line 3: bad; line 5: bad; line 8: bad; "
        "and 2 more); fix the rows or raise the source's max_bad_rows."
    )


def test_split_heldout_keeps_equal_keys_together_and_never_holds_out_everything() -> None:
    items = ["a", "a", "a", "b", "c", "d"]
    for seed in range(20):
        train, heldout = split_heldout(items, str, 0.5, seed)
        assert sorted(train + heldout) == sorted(items)
        assert not set(train) & set(heldout) and train
    assert split_heldout(items, str, 0.0, 0) == (items, [])
    assert split_heldout(["x", "x"], str, 0.5, 0) == (["x", "x"], [])  # one distinct prompt cannot be split


# --- file task: field mapping -------------------------------------------------------------


def test_file_task_maps_prompts_references_and_verifiers_exactly() -> None:
    task = _file_task(DATA / "good.jsonl", verifier_field="verifier", heldout_ratio=0.0)
    assert isinstance(task, Task) and task.name == "qa"
    train, heldout = _build(task)
    assert heldout == [] and task.skipped == []
    assert [(p.id, p.split, p.messages, p.reference, p.meta) for p in train] == [
        ("qa-1", "train", _user("What is the capital of France?"), "Paris", {"verifier": "exact_match"}),
        ("qa-2", "train", _user("What is 6 times 7?"), 42, {"verifier": "number_match"}),
        ("qa-3", "train", _user("Write a haiku about rain."), None, {}),
        ("qa-5", "train", _user("Reply with a JSON object with keys name and age."), ["name", "age"],
         {"verifier": "json_keys"}),
        ("qa-6", "train", _user("Name a primary colour."), "^(red|blue|yellow)$", {"verifier": "regex"}),
    ]


def test_file_task_chat_messages_with_ids_and_bad_conversations_skipped() -> None:
    task = _file_task(DATA / "chat.jsonl", name="chat", messages_field="messages", id_field="id", heldout_ratio=0.0)
    train, _ = _build(task)
    assert [(p.id, p.messages, p.reference) for p in train] == [
        ("chat-c1", [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of Spain?"}],
         "Madrid"),
        ("chat-c2", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                     {"role": "user", "content": "What is 3 + 4?"}], "7"),
    ]
    assert task.skipped == [
        (3, "the last message must be a non-empty user message"),
        (4, "message 0 needs a role of system, user, assistant; got 'robot'"),
    ]


def test_file_task_csv_split_by_column() -> None:
    task = _file_task(DATA / "good.csv", name="csv", id_field="id", prompt_field="question", reference_field="answer",
                      heldout_column="split")
    train, heldout = _build(task)
    assert [(p.id, p.reference) for p in train] == [("csv-q1", "Tokyo"), ("csv-q3", None)]  # empty cell: no reference
    assert [(p.id, p.text, p.reference) for p in heldout] == [
        ("csv-q2", "What is 2 + 2?\nAnswer with a number.", "4"), ("csv-q4", "What is the capital of Italy?", "Rome"),
    ]
    assert all(p.split == "heldout" for p in heldout) and all(p.split == "train" for p in train)


def test_file_task_split_by_ratio_is_deterministic_disjoint_and_ignores_sizes() -> None:
    task = _file_task(DATA / "good.jsonl", heldout_ratio=0.4)
    train, heldout = task.build(train_size=100, heldout_size=0, seed=7)
    assert (train, heldout) == task.build(train_size=1, heldout_size=50, seed=7)
    assert len(heldout) == 2 and len(train) == 3  # round(0.4 x 5)
    ids = [p.id for p in train + heldout]
    assert sorted(ids) == ["qa-1", "qa-2", "qa-3", "qa-5", "qa-6"] and len(set(ids)) == 5
    assert [p.id for p in train] == sorted(p.id for p in train)  # file order kept within a side
    splits = {tuple(p.id for p in _build(task, seed)[1]) for seed in range(10)}
    assert len(splits) > 1  # the seed picks the held-out rows
    assert len(_build(_file_task(DATA / "good.jsonl", heldout_ratio=0.01))[1]) == 1  # at least one held out


def test_file_task_parquet_with_messages(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([
        {"messages": _user("What is 1 + 1?"), "reference": "2"},
        {"messages": _user("Say hi."), "reference": None},
    ]).to_parquet(str(tmp_path / "chat.parquet"))
    train, _ = _build(_file_task(tmp_path / "chat.parquet", messages_field="messages", heldout_ratio=0.0))
    assert [(p.id, p.messages, p.reference) for p in train] == [
        ("qa-1", _user("What is 1 + 1?"), "2"), ("qa-2", _user("Say hi."), None),
    ]


def test_file_task_csv_messages_cell_holds_json(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["messages"])
        writer.writerow([json.dumps(_user("Hello there"))])
        writer.writerow(["not json"])
    task = _file_task(path, messages_field="messages", heldout_ratio=0.0)
    assert [(p.id, p.messages) for p in _build(task)[0]] == [("qa-2", _user("Hello there"))]
    assert task.skipped == [(3, "messages must be a list of {role, content}; got text that is not JSON")]


def test_file_task_reads_a_saved_dataset_directory(tmp_path: Path) -> None:
    import datasets

    datasets.DatasetDict(test=datasets.Dataset.from_list([
        {"q": "What is 5 + 5?", "a": "10", "uid": 77},
    ])).save_to_disk(str(tmp_path / "saved"))
    task = _file_task(tmp_path / "saved", split="test", prompt_field="q", reference_field="a", id_field="uid",
                      verifier="number", heldout_ratio=0.0)
    train, _ = _build(task)
    assert [(p.id, p.text, p.reference) for p in train] == [("qa-77", "What is 5 + 5?", "10")]
    assert task.verify(train[0], "It is 10.") == 1.0


# --- file task: verification ------------------------------------------------------------


def test_verify_each_builtin_gives_exact_values() -> None:
    task = _file_task(DATA / "good.jsonl", verifier_field="verifier", heldout_ratio=0.0)
    prompts = {p.id: p for p in _build(task)[0]}
    cases = [
        ("qa-1", " paris ", 1.0), ("qa-1", "PARIS", 1.0), ("qa-1", "Paris, France", 0.0),
        ("qa-2", "The answer is 42.", 1.0), ("qa-2", "41", 0.0), ("qa-2", "no idea", 0.0),
        ("qa-3", "Rain falls softly", None),
        ("qa-5", '{"name": "Ada", "age": 36}', 1.0), ('qa-5', '```json\n{"name": "Ada", "age": 36}\n```', 1.0),
        ("qa-5", '{"name": "Ada"}', 0.0), ("qa-5", "not json", 0.0),
        ("qa-6", "blue", 1.0), ("qa-6", "green", 0.0),
    ]
    assert [task.verify(prompts[pid], response) for pid, response, _ in cases] == [want for _, _, want in cases]


def test_verify_uses_config_verifier_unless_the_row_overrides_it() -> None:
    plain = {p.id: p for p in _build(_file_task(DATA / "good.jsonl", heldout_ratio=0.0))[0]}
    task = _file_task(DATA / "good.jsonl", heldout_ratio=0.0)
    assert plain["qa-2"].meta == {"verifier": "exact_match"}  # no verifier_field: the default for every row
    assert task.verify(plain["qa-2"], "42") == 1.0 and task.verify(plain["qa-2"], "It is 42.") == 0.0
    by_number = _file_task(DATA / "good.jsonl", verifier="number_match", heldout_ratio=0.0)
    prompt = {p.id: p for p in _build(by_number)[0]}["qa-2"]
    assert by_number.verify(prompt, "It is 42.") == 1.0


def test_verify_python_tests_runs_the_code(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "code.jsonl", [{"prompt": "Write add(a, b).", "reference": "assert add(2, 3) == 5"}])
    task = _file_task(path, verifier="python_tests", heldout_ratio=0.0)
    (prompt,), _ = _build(task)
    assert task.verify(prompt, "```python\ndef add(a, b):\n    return a + b\n```") == 1.0
    assert task.verify(prompt, "def add(a, b):\n    return a - b") == 0.0


def test_verify_returns_none_when_the_verifier_cannot_grade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "source_checks.py").write_text(
        "def half(prompt, response, reference):\n    return 0.5\n\n"
        "def boom(prompt, response, reference):\n    raise RuntimeError('bug')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # a user's module, importable by dotted path
    path = _write_jsonl(tmp_path / "odd.jsonl", [
        {"prompt": "p1", "reference": "not a number", "check": "number"},  # number_match: ValueError
        {"prompt": "p2", "reference": "(unclosed", "check": "regex"},  # re.error: not a ValueError
        {"prompt": "p3", "reference": "x", "check": "source_checks:half"},
        {"prompt": "p4", "reference": "x", "check": "source_checks:boom"},
    ])
    task = _file_task(path, verifier_field="check", heldout_ratio=0.0)
    p1, p2, p3, p4 = _build(task)[0]
    assert [task.verify(p, "5") for p in (p1, p2, p3, p4)] == [None, None, 0.5, None]
    assert p3.meta == {"verifier": "source_checks:half"}


def test_unknown_verifiers_fail_at_build_naming_the_row(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "v.jsonl", [{"prompt": "p1", "v": "exact"}, {"prompt": "p2", "v": "exactly"}])
    with pytest.raises(AutodidactError) as caught:
        _build(_file_task(path, verifier_field="v"))
    assert str(caught.value) == (
        f"source 'qa': {path} line 2, column 'v': unknown verifier 'exactly'; choose one of exact, number, regex, "
        "json_keys, python_tests, or a dotted path 'pkg.mod:fn'. Did you mean 'exact'?"
    )
    with pytest.raises(AutodidactError, match="source 'qa': verifier: unknown verifier 'fuzzy'"):
        _build(_file_task(path, verifier="fuzzy"))
    with pytest.raises(AutodidactError, match="verifier: cannot import module 'no_such_module_xyz'"):
        _build(_file_task(path, verifier="no_such_module_xyz:check"))


# --- file task: bad input -------------------------------------------------------------------


def test_bad_json_lines_are_skipped_under_the_limit() -> None:
    task = _file_task(DATA / "bad_json.jsonl", max_bad_rows=2, heldout_ratio=0.0)
    train, _ = _build(task)
    assert [(p.id, p.reference) for p in train] == [("qa-1", "1"), ("qa-3", "3"), ("qa-5", "5")]
    assert task.skipped == [
        (2, "not valid JSON (Expecting value at column 32)"), (4, "not valid JSON (Expecting value at column 1)"),
    ]


def test_bad_rows_above_the_limit_name_file_and_lines() -> None:
    with pytest.raises(AutodidactError) as caught:
        _build(_file_task(DATA / "bad_json.jsonl", max_bad_rows=1))
    message = str(caught.value)
    assert "bad_json.jsonl: more than max_bad_rows=1 rows are bad" in message
    assert "line 2: not valid JSON" in message and "line 4: not valid JSON" in message
    assert "raise the source's max_bad_rows" in message


def test_non_utf8_line_is_a_counted_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "one"}\n{"prompt": "caf\xe9"}\n{"prompt": "three"}\n')
    task = _file_task(path, heldout_ratio=0.0)
    assert [p.id for p in _build(task)[0]] == ["qa-1", "qa-3"]
    assert task.skipped == [(2, "not UTF-8 text (byte 0xe9 at column 16); save the file as UTF-8")]
    with pytest.raises(AutodidactError, match=r"latin1\.jsonl: more than max_bad_rows=0 .*line 2: not UTF-8 text"):
        _build(_file_task(path, max_bad_rows=0))


def test_rows_of_the_wrong_type_are_skipped_and_counted() -> None:
    task = _file_task(DATA / "wrong_types.jsonl", heldout_ratio=0.0)
    assert [p.id for p in _build(task)[0]] == ["qa-1", "qa-6"]
    assert task.skipped == [
        (5, "expected an object with fields, got str"),  # found while reading, before field mapping
        (2, "'prompt' must be non-empty text; got 12345"),
        (3, "'prompt' must be non-empty text; got ['a', 'list']"),
        (4, "'prompt' must be non-empty text; got '   '"),
    ]
    with pytest.raises(AutodidactError, match=r"wrong_types\.jsonl: more than max_bad_rows=3"):
        _build(_file_task(DATA / "wrong_types.jsonl", max_bad_rows=3))


def test_duplicate_ids_are_bad_rows(tmp_path: Path) -> None:
    rows = [{"k": "a", "prompt": "1"}, {"k": "a", "prompt": "2"}, {"k": 3, "prompt": "3"}]
    path = _write_jsonl(tmp_path / "dup.jsonl", rows)
    task = _file_task(path, id_field="k", heldout_ratio=0.0)
    assert [p.id for p in _build(task)[0]] == ["qa-a", "qa-3"]
    assert task.skipped == [(2, "duplicate id 'a' (first at line 1)")]


def test_missing_column_names_it_and_the_existing_columns() -> None:
    with pytest.raises(AutodidactError) as caught:
        _build(_file_task(DATA / "missing_column.csv"))
    assert str(caught.value) == (
        f"source 'qa': {DATA / 'missing_column.csv'} has no column 'prompt' (set by prompt_field); "
        "its columns are: answer, question."
    )
    with pytest.raises(AutodidactError, match="has no column 'fold' \\(set by heldout_column\\)"):
        _build(_file_task(DATA / "good.csv", prompt_field="question", heldout_column="fold"))
    with pytest.raises(AutodidactError, match=r"no column 'answr' \(set by reference_field\).*Did you mean 'answer'"):
        _build(_file_task(DATA / "missing_column.csv", prompt_field="question", reference_field="answr"))
    # The default reference column may be absent: the rows are then prompts without references.
    train, _ = _build(_file_task(DATA / "missing_column.csv", prompt_field="question", heldout_ratio=0.0))
    assert [p.reference for p in train] == [None, None]


def test_no_usable_rows_is_an_error(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "none.jsonl", [{"prompt": 1}, {"prompt": ""}])
    with pytest.raises(AutodidactError, match=r"none\.jsonl: no usable rows \(line 1: 'prompt' must be non-empty text"):
        _build(_file_task(path))


def test_missing_file_and_empty_file_fail_at_build() -> None:
    with pytest.raises(AutodidactError, match="no such file or directory"):
        _build(_file_task(DATA / "nope.csv"))
    with pytest.raises(AutodidactError, match="the file is empty"):
        _build(_file_task(DATA / "empty.jsonl"))


# --- logs task ------------------------------------------------------------------------------


def test_logs_prompt_ends_at_the_last_user_message_with_the_deployed_reply() -> None:
    task = LogsTask(LogsSourceConfig(path=str(DATA / "logs.jsonl"), heldout_ratio=0.0))
    assert isinstance(task, Task) and task.name == "logs"
    train, heldout = _build(task)
    assert heldout == []
    assert [(p.id, p.messages, p.meta) for p in train] == [
        ("logs-conv-a", [{"role": "system", "content": "Be kind."}, *_user("How do I boil an egg?")],
         {"deployed_response": "Boil it for 9 minutes."}),
        ("logs-2", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Tell me a joke."},
                    {"role": "assistant", "content": "Why did the chicken cross the road?"},  # content parts joined
                    {"role": "user", "content": "Another one."}], {}),
        ("logs-3", [*_user("What is the capital of Peru?"), {"role": "assistant", "content": "Lima."},
                    *_user("Thanks")],
         {"deployed_response": "You're welcome."}),
        ("logs-5", _user("Summarise this."), {}),  # the reply was a tool call: no text to compare
    ]
    assert all(p.reference is None and task.verify(p, "anything") is None for p in train)
    assert task.skipped == [(4, "the conversation has no user message")]


def test_logs_without_deployed_replies_and_seeded_split() -> None:
    task = LogsTask(LogsSourceConfig(name="chatlog", path=str(DATA / "logs.jsonl"), include_deployed=False,
                                     heldout_ratio=0.5))
    train, heldout = _build(task, seed=3)
    assert (train, heldout) == _build(task, seed=3)
    assert len(heldout) == 2 and len(train) == 2
    assert sorted(p.id for p in train + heldout) == ["chatlog-2", "chatlog-3", "chatlog-5", "chatlog-conv-a"]
    assert all(p.meta == {} for p in train + heldout)


def test_logs_repeated_prompts_stay_on_one_side(tmp_path: Path) -> None:
    rows = [{"messages": _user("hi") + [{"role": "assistant", "content": f"hello {i}"}]} for i in range(4)]
    rows += [{"messages": _user(f"question {i}")} for i in range(4)]
    task = LogsTask(LogsSourceConfig(path=str(_write_jsonl(tmp_path / "log.jsonl", rows)), heldout_ratio=0.5))
    for seed in range(10):
        train, heldout = _build(task, seed)
        assert not {p.text for p in train} & {p.text for p in heldout}
        assert len(train) + len(heldout) == 8 and heldout


def test_logs_bad_lines_above_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"messages": []}\n{"id": "x"}\n42\n' + json.dumps({"messages": _user("ok")}) + "\n")
    task = LogsTask(LogsSourceConfig(path=str(path), max_bad_rows=3, heldout_ratio=0.0))
    assert [p.id for p in _build(task)[0]] == ["logs-4"]
    assert task.skipped == [
        (1, "the conversation has no user message"),
        (2, "expected {\"messages\": [...]} or a list of messages; got dict"),
        (3, "expected {\"messages\": [...]} or a list of messages; got int"),
    ]
    with pytest.raises(AutodidactError, match=r"log\.jsonl: more than max_bad_rows=2 rows are bad \(line 1: "):
        _build(LogsTask(LogsSourceConfig(path=str(path), max_bad_rows=2)))
