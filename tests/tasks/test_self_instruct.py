"""Self-written prompts: seeds, the seed split, and `grow`'s cleaning, filters and cap."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from autodidact.config import SelfInstructSourceConfig
from autodidact.embeddings import load_embedder
from autodidact.engines import Completion, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.records import Message, Prompt, Split
from autodidact.tasks.base import GrowsPrompts
from autodidact.tasks.self_instruct import OUTCOMES, WRITE_INSTRUCTION, SelfInstructTask, clean_written_prompt


class NoEmbedder:
    """For tests that never reach the filters."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("not expected to embed")


class ScriptedEngine:
    """Answers each (prompt, sample) in call order with the next scripted completion."""

    def __init__(self, script: list[str | Completion]) -> None:
        self.script = [c if isinstance(c, Completion) else Completion(c, len(c.split())) for c in script]
        self.calls: list[tuple[list[str], SamplingParams]] = []

    def render(self, messages: Sequence[Message]) -> str:
        return "USER: " + messages[-1]["content"]

    def generate(self, prompts: Sequence[str], params: SamplingParams, desc: str = "") -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        return [[self.script.pop(0) for _ in range(params.n)] for _ in prompts]


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("default")


def _config(**fields: object) -> SelfInstructSourceConfig:
    return SelfInstructSourceConfig(**{"seeds": ["Write a poem about tea.", "Explain what rain is."], **fields})


def _prompts(texts: list[str], split: Split = "train", task: str = "self_instruct") -> list[Prompt]:
    return [
        Prompt(id=f"{task}-{i}", task=task, split=split, messages=[{"role": "user", "content": t}])
        for i, t in enumerate(texts)
    ]


# --- seeds -------------------------------------------------------------------

def test_seeds_from_list_txt_and_jsonl(tmp_path: Path) -> None:
    txt = tmp_path / "seeds.txt"
    txt.write_text("  Name a fruit that is red.\n\n\nWrite a poem about tea.\n", encoding="utf-8")
    task = SelfInstructTask(_config(seeds_path=str(txt)), NoEmbedder())
    # The repeated "Write a poem about tea." is kept once: it could otherwise land in both splits.
    assert task.seeds == ["Write a poem about tea.", "Explain what rain is.", "Name a fruit that is red."]

    jsonl = tmp_path / "seeds.jsonl"
    rows = ['{"prompt": "Name a fruit that is red."}', "", '{"text": "no prompt"}', '{"prompt": " List two colours. "}']
    jsonl.write_text("\n".join(rows) + "\n", encoding="utf-8")
    task = SelfInstructTask(_config(seeds=[], seeds_path=str(jsonl)), NoEmbedder())
    assert task.seeds == ["Name a fruit that is red.", "List two colours."]
    assert task.bad_rows == 1
    with pytest.raises(AutodidactError, match="max_bad_rows=0"):
        SelfInstructTask(_config(seeds=[], seeds_path=str(jsonl), max_bad_rows=0), NoEmbedder())


def test_seed_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AutodidactError, match=r"1 distinct seed.*`seeds` and/or `seeds_path`"):
        SelfInstructTask(_config(seeds=["Only one.", " only  ONE. "]), NoEmbedder())
    with pytest.raises(AutodidactError, match="0 distinct seed"):
        SelfInstructTask(SelfInstructSourceConfig(), NoEmbedder())
    missing = tmp_path / "nope.txt"
    with pytest.raises(AutodidactError, match=f"'{missing}' does not exist"):
        SelfInstructTask(_config(seeds_path=str(missing)), NoEmbedder())
    binary = tmp_path / "bad.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(AutodidactError, match=f"'{binary}' could not be read as UTF-8"):
        SelfInstructTask(_config(seeds_path=str(binary)), NoEmbedder())
    with pytest.raises(AutodidactError, match=r"\.txt .* or \.jsonl"):
        SelfInstructTask(_config(seeds_path=str(tmp_path / "seeds.csv")), NoEmbedder())
    with pytest.raises(AutodidactError, match="needs a sentence embedder"):
        SelfInstructTask(_config(), None)


# --- build -------------------------------------------------------------------

def test_build_splits_seeds_deterministically() -> None:
    seeds = [f"Seed task number {k} about topic {k}." for k in range(10)]
    task = SelfInstructTask(_config(name="writer", seeds=seeds, heldout_ratio=0.2), NoEmbedder())
    train, heldout = task.build(200, 48, seed=5)  # the global sizes are ignored
    assert (train, heldout) == task.build(1, 1, seed=5)
    assert len(train) == 8 and len(heldout) == 2
    assert {p.text for p in train} | {p.text for p in heldout} == set(seeds)
    assert not {p.id for p in train} & {p.id for p in heldout}
    for p in train + heldout:
        assert p.id == f"writer-seed{seeds.index(p.text)}"
        assert (p.task, p.reference, p.meta) == ("writer", None, {"origin": "seed"})
    assert {p.split for p in train} == {"train"} and {p.split for p in heldout} == {"heldout"}
    assert any(task.build(0, 0, seed=s)[1] != heldout for s in range(6, 12))


@pytest.mark.parametrize(
    ("n_seeds", "ratio", "n_heldout"), [(2, 0.1, 0), (3, 0.1, 1), (3, 0.0, 0), (3, 0.9, 2), (10, 0.25, 3)]
)
def test_build_heldout_count(n_seeds: int, ratio: float, n_heldout: int) -> None:
    seeds = [f"Task {k} of the seed list." for k in range(n_seeds)]
    task = SelfInstructTask(_config(seeds=seeds, heldout_ratio=ratio), NoEmbedder())
    train, heldout = task.build(0, 0, seed=0)
    assert (len(train), len(heldout)) == (n_seeds - n_heldout, n_heldout)


def test_verify_grades_nothing() -> None:
    task = SelfInstructTask(_config(), NoEmbedder())
    assert task.verify(_prompts(["Explain what rain is."])[0], "Water falling.") is None


# --- grow --------------------------------------------------------------------

POOL = [
    "Write a short poem about the sea.",
    "List three benefits of regular exercise.",
    "Translate 'good morning' into French.",
    "Give three tips for saving money on groceries.",
    "Describe the water cycle for a ten-year-old.",
    "Write a limerick about a cat.",
    "Suggest a name for a bakery.",
    "What are the rules of chess castling?",
]
HELDOUT = ["Explain how photosynthesis works in plants."]
# One reply per request, in request order (per_iteration 7 -> ceil(10.5) = 11 requests).
SCRIPT: list[str | Completion] = [
    "Explain how plants perform photosynthesis.",  # paraphrase of a held-out item
    "List three benefits of regular exercise.",  # exact copy of a pool prompt
    '4. Task: "Write a haiku about rivers."\n\nHere is another one.',  # kept, cleaned
    "Compose a haiku about rivers.",  # near-duplicate of the kept haiku
    "",
    "Summarize the plot of Romeo and Juliet in two sentences.",  # kept
    "Hi there.",  # 2 words
    Completion("", 0, error="server down"),
    "Compose a brief poem about the sea.",  # near-duplicate of a pool prompt
    " ".join(["word"] * 201),
    "Name the capital city of Australia and explain why it was chosen.",  # kept
]


def test_clean_written_prompt() -> None:
    assert clean_written_prompt("4. Task: Write a haiku about rivers.") == "Write a haiku about rivers."
    assert clean_written_prompt("\n\nNew task: 'Name a bird.'\n\nSure!") == "Name a bird."
    assert clean_written_prompt("- Task 2: List two colours.\n3. List three colours.") == "List two colours."
    assert clean_written_prompt("Explain this code:\nprint(1)") == "Explain this code:\nprint(1)"
    assert clean_written_prompt("   \n ") == ""


def test_grow_filters_cleans_and_counts(embedder) -> None:
    task = SelfInstructTask(_config(name="writer", per_iteration=7, examples_per_request=3), embedder)
    engine = ScriptedEngine(list(SCRIPT))
    pool = _prompts(POOL)
    grown = task.grow(engine, pool, _prompts(HELDOUT, "heldout", "other"), iteration=2, seed=3)
    written = grown.prompts

    assert isinstance(task, GrowsPrompts)
    assert [p.text for p in written] == [
        "Write a haiku about rivers.",
        "Summarize the plot of Romeo and Juliet in two sentences.",
        "Name the capital city of Australia and explain why it was chosen.",
    ]
    assert [p.id for p in written] == ["writer-it2-0", "writer-it2-1", "writer-it2-2"]
    for p in written:
        assert (p.task, p.split, p.reference) == ("writer", "train", None)
        assert p.meta == {"origin": "self_instruct", "iteration": 2}
    assert grown.stats == {
        "requests": 11, "failed": 1, "empty": 1, "too_short": 1, "too_long": 1, "duplicate": 1,
        "near_heldout": 1, "near_pool": 1, "near_batch": 1, "over_cap": 0, "kept": 3,
    }

    (requests, params), = engine.calls
    assert len(requests) == len(set(requests)) == 11 and params.n == 1  # every request distinct for this seed
    assert params == SamplingParams(n=1, temperature=1.0, top_p=0.95, max_new_tokens=96, seed=3 * 7919 + 2)
    for request in requests:
        head, examples, tail = request.split("\n", 1)[0], request.split("\n")[1:4], request.split("\n\n")[-1]
        assert head == "USER: Here are some example tasks:" and tail == WRITE_INSTRUCTION
        assert [e[:3] for e in examples] == ["1. ", "2. ", "3. "] and {e[3:] for e in examples} <= set(POOL)
        assert len({e[3:] for e in examples}) == 3
    # The requests are a function of (seed, iteration) alone.
    again = ScriptedEngine(list(SCRIPT))
    task.grow(again, pool, _prompts(HELDOUT, "heldout", "other"), iteration=2, seed=3)
    assert again.calls[0][0] == requests


def test_grow_stops_at_max_pool(embedder) -> None:
    pool = _prompts(POOL)
    task = SelfInstructTask(_config(per_iteration=7, max_pool=len(POOL)), embedder)
    engine = ScriptedEngine([])
    grown = task.grow(engine, pool, [], iteration=1, seed=0)
    assert grown.prompts == [] and engine.calls == [] and grown.stats["requests"] == 0

    task = SelfInstructTask(_config(per_iteration=7, max_pool=len(POOL) + 1), embedder)
    grown = task.grow(ScriptedEngine(list(SCRIPT)), pool, _prompts(HELDOUT, "heldout"), iteration=2, seed=3)
    assert [p.text for p in grown.prompts] == ["Write a haiku about rivers."]
    assert (grown.stats["kept"], grown.stats["over_cap"]) == (1, 2)


def test_grow_sends_a_repeated_request_once_with_more_samples(embedder) -> None:
    # Two pool prompts shown two at a time: only two distinct requests exist.
    script = ["Name a bird that cannot fly.", "Describe how a volcano erupts.", "Write a recipe for pancakes.",
              "Explain what a prime number is."]
    task = SelfInstructTask(_config(per_iteration=2, examples_per_request=2), embedder)
    engine = ScriptedEngine(script)
    grown = task.grow(engine, _prompts(["Write a poem about tea.", "Explain what rain is."]), [], iteration=1, seed=0)
    (requests, params), = engine.calls
    assert len(requests) < 3 and params.n >= 2 and len(requests) * params.n <= len(script)
    assert grown.stats["requests"] == 3 and grown.stats["kept"] == len(grown.prompts) == 2
    assert sum(grown.stats[o] for o in OUTCOMES) == 3


def test_grow_on_tiny_model(tiny_engine, embedder) -> None:
    task = SelfInstructTask(_config(name="writer", per_iteration=2, max_pool=10), embedder)
    train, heldout = task.build(0, 0, seed=0)
    grown = task.grow(tiny_engine, train, heldout, iteration=1, seed=0)
    written = grown.prompts
    assert all(isinstance(p, Prompt) and p.id.startswith("writer-it1-") and p.split == "train" for p in written)
    assert len(written) <= 2 and len({p.text for p in written}) == len(written)
    assert grown.stats["requests"] == 3
    assert sum(grown.stats[o] for o in OUTCOMES) == 3 and grown.stats["kept"] == len(written)
