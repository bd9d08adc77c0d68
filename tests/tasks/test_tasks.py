"""Behaviour of the built-in tasks: splits, determinism, verifiers, registry."""

from __future__ import annotations

import re

import pytest

from autodidact.errors import AutodidactError
from autodidact.records import Prompt
from autodidact.tasks import TASKS, ArithmeticTask, InstructionsTask, Task, arithmetic, get_task, instructions


def _arith(op: str, a: int, b: int, reference: int | None) -> Prompt:
    return Prompt(id="p", task="arithmetic", split="heldout",
                  messages=[{"role": "user", "content": f"What is {a} {op} {b}?"}],
                  reference=reference, meta={"op": op, "a": a, "b": b})


def _instr(**constraint: object) -> Prompt:
    return Prompt(id="p", task="instructions", split="heldout",
                  messages=[{"role": "user", "content": "Describe the ocean."}],
                  reference=constraint, meta=dict(constraint))


def _texts(prompts: list[Prompt]) -> set[str]:
    return {p.text for p in prompts}


# --- build: splits and determinism -------------------------------------------

@pytest.mark.parametrize("task", [ArithmeticTask(), InstructionsTask()])
def test_build_gives_exact_disjoint_splits(task: Task) -> None:
    train, heldout = task.build(300, 100, seed=0)
    assert len(train) == 300 and len(heldout) == 100
    assert len(_texts(train)) == 300 and len(_texts(heldout)) == 100
    assert _texts(train) & _texts(heldout) == set()
    assert {p.split for p in train} == {"train"} and {p.split for p in heldout} == {"heldout"}
    assert {p.task for p in train + heldout} == {task.name}
    assert train[7].id == f"{task.name}-train-0007"
    assert heldout[0].id == f"{task.name}-heldout-0000"


def _triples(prompts: list[Prompt]) -> set[tuple[str, int, int]]:
    return {(p.meta["op"], p.meta["a"], p.meta["b"]) for p in prompts}


def test_arithmetic_splits_share_no_problem() -> None:
    train, heldout = ArithmeticTask().build(500, 200, seed=3)
    assert len(_triples(train)) == 500
    assert _triples(train) & _triples(heldout) == set()


@pytest.mark.parametrize("task", [ArithmeticTask(), InstructionsTask()])
def test_build_is_deterministic_per_seed(task: Task) -> None:
    assert task.build(20, 10, seed=42) == task.build(20, 10, seed=42)
    assert _texts(task.build(20, 10, seed=42)[0]) != _texts(task.build(20, 10, seed=43)[0])


def test_arithmetic_prompts_are_well_formed() -> None:
    train, heldout = ArithmeticTask().build(200, 0, seed=1)
    assert heldout == []
    for p in train:
        op, a, b = p.meta["op"], p.meta["a"], p.meta["b"]
        assert p.reference == {"+": a + b, "-": a - b, "*": a * b}[op]
        if op == "*":
            assert 2 <= a <= 12 and 2 <= b <= 12
        else:
            assert 0 <= a <= 99 and 0 <= b <= 99
        assert p.messages == [{"role": "user", "content": p.text}]
    assert {p.meta["op"] for p in train} == {"+", "-", "*"}


def test_instructions_prompts_state_their_constraint() -> None:
    train, _ = InstructionsTask().build(400, 0, seed=2)
    assert {p.reference["kind"] for p in train} == {
        "lowercase", "max_words", "min_words", "include_word",
        "avoid_word", "json_key", "bullets", "ends_with",
    }
    for p in train:
        assert p.meta == p.reference
        for field in ("n", "word", "key", "phrase"):
            if field in p.reference:
                assert str(p.reference[field]) in p.text


def test_small_space_can_be_used_whole_but_not_exceeded() -> None:
    task = ArithmeticTask(max_operand=2, max_factor=3)  # 9 + 9 + 4 problems
    assert task.capacity() == 22
    train, heldout = task.build(20, 2, seed=0)
    assert len(_texts(train + heldout)) == 22
    with pytest.raises(AutodidactError, match="only 22 distinct"):
        task.build(20, 3, seed=0)


def test_instructions_oversized_request_is_refused() -> None:
    task = InstructionsTask()
    assert task.capacity() == 42 * 4 * 32
    with pytest.raises(AutodidactError, match="lower train_size"):
        task.build(task.capacity(), 1, seed=0)


def test_negative_size_is_refused() -> None:
    with pytest.raises(AutodidactError):
        ArithmeticTask().build(-1, 5, seed=0)


# --- the paraphrased held-out set ----------------------------------------------

def _template_pattern(template: str) -> re.Pattern[str]:
    """A template's fixed words with any text in its {placeholders}: finds the template in a prompt."""
    return re.compile("(.+?)".join(re.escape(part) for part in re.split(r"\{\w+\}", template)))


# Every wording of each side, as templates: (training wordings, held-out-only wordings).
WORDINGS = {
    "arithmetic": (list(arithmetic._TEMPLATES),
                   [t for ts in arithmetic._PARAPHRASES.values() for t in ts]),
    "instructions": ([*instructions.REQUESTS, *instructions._STATEMENTS.values()],
                     [*instructions.PARAPHRASED_REQUESTS, *instructions._PARAPHRASED_STATEMENTS.values()]),
}


@pytest.mark.parametrize("task", [ArithmeticTask(), InstructionsTask()])
def test_paraphrased_heldout_is_disjoint_and_worded_apart(task: Task) -> None:
    train, heldout = task.build(300, 100, seed=5)
    reworded = task.build_paraphrased(300, 100, 100, seed=5)
    assert len(reworded) == 100 and len(_texts(reworded)) == 100
    assert {p.split for p in reworded} == {"heldout_paraphrase"} and {p.task for p in reworded} == {task.name}
    assert reworded[3].id == f"{task.name}-heldout_paraphrase-0003"
    seen = _texts(train) | _texts(heldout)
    assert _texts(reworded) & seen == set()
    # The same problem in the training wording is a text no train or held-out prompt has: the pool's unit.
    assert {p.meta["training_wording"] for p in reworded} & seen == set()
    # No prompt of the set contains a training template, and no training prompt a held-out-only one.
    training, held_out_only = WORDINGS[task.name]
    checked = 0
    for template in training:
        assert not any(_template_pattern(template).search(p.text) for p in reworded), template
        checked += 1
    for template in held_out_only:
        assert not any(_template_pattern(template).search(p.text) for p in train + heldout), template
        checked += 1
    assert checked == len(training) + len(held_out_only) >= 8
    # Every held-out-only wording is used (a small pool leaves every op room), and train/held-out are
    # what build() gives without the set.
    many = task.build_paraphrased(20, 10, 300, seed=5)
    for template in held_out_only:
        assert any(_template_pattern(template).search(p.text) for p in many), template
    assert task.build(300, 100, seed=5) == (train, heldout)


def test_paraphrased_arithmetic_shares_no_problem_and_keeps_its_answer() -> None:
    task = ArithmeticTask()
    train, heldout = task.build(500, 200, seed=3)
    reworded = task.build_paraphrased(500, 200, 200, seed=3)
    assert len(_triples(reworded)) == 200
    assert _triples(reworded) & (_triples(train) | _triples(heldout)) == set()
    for p in reworded:
        op, a, b = p.meta["op"], p.meta["a"], p.meta["b"]
        assert p.reference == {"+": a + b, "-": a - b, "*": a * b}[op]
        assert str(a) in p.text and str(b) in p.text
        assert task.verify(p, f"The answer is {p.reference}.") == 1.0
        assert task.verify(p, f"{p.reference + 1}") == 0.0


def test_paraphrased_instructions_keep_the_constraint_and_its_grading() -> None:
    task = InstructionsTask()
    reworded = task.build_paraphrased(200, 48, 200, seed=1)
    assert {p.reference["kind"] for p in reworded} == set(instructions.KINDS)
    for p in reworded:
        assert p.meta == p.reference | {"training_wording": p.meta["training_wording"]}
        assert instructions.describe(p.reference, paraphrased=True) in p.text
        for field in ("n", "word", "key", "phrase"):
            if field in p.reference:
                assert str(p.reference[field]) in p.text
    assert set(instructions._PARAPHRASED_STATEMENTS) == set(instructions.KINDS)
    assert len(instructions.PARAPHRASED_REQUESTS) == len(instructions.REQUESTS)


@pytest.mark.parametrize("task", [ArithmeticTask(), InstructionsTask()])
def test_paraphrased_heldout_is_deterministic_and_grows_by_extension(task: Task) -> None:
    assert task.build_paraphrased(20, 10, 8, seed=42) == task.build_paraphrased(20, 10, 8, seed=42)
    assert task.build_paraphrased(20, 10, 8, seed=42) == task.build_paraphrased(20, 10, 16, seed=42)[:8]
    assert task.build_paraphrased(20, 10, 0, seed=42) == []


def test_paraphrased_heldout_beyond_the_problem_space_is_refused() -> None:
    task = ArithmeticTask(max_operand=2, max_factor=3)  # 22 problems
    assert len(task.build_paraphrased(18, 2, 2, seed=0)) == 2
    with pytest.raises(AutodidactError, match="only 22 distinct.*paraphrase_heldout_size"):
        task.build_paraphrased(18, 2, 3, seed=0)


# --- arithmetic verifier ------------------------------------------------------

@pytest.mark.parametrize("response, expected", [
    ("The answer is 68.", 1.0),
    ("68", 1.0),
    ("23 + 45 = 68", 1.0),
    ("I think 67 or 68... final: 67", 0.0),
    ("68.0", 1.0),
    ("68.5", 0.0),
    ("sixty-eight", 0.0),
    ("", 0.0),
])
def test_arithmetic_verify_uses_last_integer(response: str, expected: float) -> None:
    assert ArithmeticTask().verify(_arith("+", 23, 45, 68), response) == expected


def test_arithmetic_verify_signs_and_commas() -> None:
    task = ArithmeticTask()
    assert task.verify(_arith("-", 3, 10, -7), "3 - 10 = -7") == 1.0
    assert task.verify(_arith("-", 3, 10, -7), "It is 7") == 0.0
    assert task.verify(_arith("+", 999, 235, 1234), "That makes 1,234 in total.") == 1.0
    # A dash between digits is a range, not a sign: the last number is 12.
    assert task.verify(_arith("+", 5, 7, 12), "somewhere in 10-12") == 1.0


def test_arithmetic_verify_without_reference_is_none() -> None:
    assert ArithmeticTask().verify(_arith("+", 1, 2, None), "3") is None


# --- instructions verifier ----------------------------------------------------

@pytest.mark.parametrize("constraint, passing, failing", [
    ({"kind": "lowercase"}, "the sea is wide and deep.", "The sea is wide."),
    ({"kind": "max_words", "n": 10}, "one two three four five six seven eight nine ten",
     "one two three four five six seven eight nine ten eleven"),
    ({"kind": "min_words", "n": 20}, " ".join(["word"] * 20), " ".join(["word"] * 19)),
    ({"kind": "include_word", "word": "blue"}, "The water looks BLUE today.", "The water looks bluer today."),
    ({"kind": "avoid_word", "word": "ocean"}, "Oceanic currents move heat.", "The Ocean is vast."),
    ({"kind": "json_key", "key": "summary"}, '{"summary": "big water"}', '{"title": "big water"}'),
    ({"kind": "bullets", "n": 3}, "Facts:\n- one\n  * two\n- three", "- one\n- two"),
    ({"kind": "ends_with", "phrase": "Is there anything else I can help with?"},
     "The ocean is big. Is there anything else I can help with?  \n",
     "Is there anything else I can help with? The ocean is big."),
])
def test_instructions_verify_each_kind(constraint: dict, passing: str, failing: str) -> None:
    task = InstructionsTask()
    prompt = _instr(**constraint)
    assert task.verify(prompt, passing) == 1.0
    assert task.verify(prompt, failing) == 0.0


def test_json_key_accepts_fences_and_rejects_non_objects() -> None:
    task, prompt = InstructionsTask(), _instr(kind="json_key", key="summary")
    assert task.verify(prompt, '```json\n{"summary": "big water"}\n```') == 1.0
    assert task.verify(prompt, '  ```\n{"summary": 1}\n```\n') == 1.0
    assert task.verify(prompt, 'Here you go: {"summary": "x"}') == 0.0
    assert task.verify(prompt, '["summary"]') == 0.0
    assert task.verify(prompt, '```json\n{"summary": \n```') == 0.0


def test_bullets_count_exactly() -> None:
    task, prompt = InstructionsTask(), _instr(kind="bullets", n=2)
    assert task.verify(prompt, "- a\n- b") == 1.0
    assert task.verify(prompt, "- a\n- b\n- c") == 0.0
    # "**bold**" and "-dash" are not bullets: a bullet needs the marker then a space.
    assert task.verify(prompt, "**Intro**\n-dash\n- a\n* b") == 1.0


def test_blank_response_meets_no_constraint() -> None:
    task = InstructionsTask()
    assert task.verify(_instr(kind="max_words", n=10), "   ") == 0.0
    assert task.verify(_instr(kind="avoid_word", word="ocean"), "") == 0.0
    assert task.verify(_instr(kind="lowercase"), "42") == 0.0


def test_instructions_verify_cannot_grade_unknown_or_missing_reference() -> None:
    task = InstructionsTask()
    assert task.verify(_instr(kind="rhyme"), "anything") is None
    no_ref = Prompt(id="p", task="instructions", split="heldout",
                    messages=[{"role": "user", "content": "Hi"}])
    assert task.verify(no_ref, "anything") is None


# --- registry -----------------------------------------------------------------

def test_registry_builds_tasks_by_name() -> None:
    assert set(TASKS) == {"arithmetic", "instructions"}
    assert isinstance(get_task("arithmetic"), ArithmeticTask)
    assert isinstance(get_task("instructions"), InstructionsTask)
    assert isinstance(get_task("arithmetic"), Task)


def test_unknown_task_suggests_close_match() -> None:
    with pytest.raises(AutodidactError, match="unknown task 'arithmetc'.*Did you mean 'arithmetic'"):
        get_task("arithmetc")
