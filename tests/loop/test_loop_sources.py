"""Task sources inside the loop on a tiny model: files, logs with deployed replies, self-written prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.loop.conftest import plan_with
from tests.loop.test_loop import tiny_config

import autodidact
import autodidact.loop
from autodidact.config import load_config, validate_config
from autodidact.embeddings import load_embedder
from autodidact.engines import Completion
from autodidact.errors import AutodidactError
from autodidact.loop import CONFIG_FILE, STORE_FILE
from autodidact.loop.context import build_context
from autodidact.loop.prompts import prepare_prompts
from autodidact.loop.stages import OnlineTrain
from autodidact.store import RunStore
from autodidact.tasks.documents.chunks import chunk_documents, load_documents
from autodidact.tasks.documents.search import SearchIndex, format_results
from autodidact.tasks.self_instruct import SelfInstructTask
from autodidact.training import train_grpo

DATA = Path(__file__).parents[1] / "data" / "sources"


def _sources_config(model: str, out, sources: list[dict], **extra) -> dict:
    config = tiny_config(model, out, max_iterations=1)
    config["tasks"] = {"names": [], "sources": sources, "prompts_per_iteration": 2, "min_heldout": 1}  # tiny files
    config["monitors"] = {"diversity": {"prompts": 0}}
    return config | extra


def test_file_and_logs_sources_train_and_evaluate(tiny_llama, tmp_path):
    sources = [
        {"type": "file", "name": "qa", "path": str(DATA / "good.jsonl"), "heldout_ratio": 0.4, "weight": 1.5},
        {"type": "logs", "name": "chats", "path": str(DATA / "logs.jsonl"), "heldout_ratio": 0.25},
    ]
    result = autodidact.run(_sources_config(tiny_llama, tmp_path, sources))
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        train = store.prompts(split="train")
        assert {p.task for p in train} == {"qa", "chats"}
        info = store.stage_info(1, "generate")
        # Weights: qa draws round(2 x 1.5) = 3 prompts, chats 2.
        drawn = [s.prompt_id for s in store.samples(1) if s.index == 0 and s.prompt_id in {p.id for p in train}]
        assert sum(pid.startswith("qa-") for pid in drawn) == 3 and sum(pid.startswith("chats-") for pid in drawn) == 2
        # Every drawn log prompt with a logged reply got it as one extra candidate, judged like the others.
        deployed = [s for s in store.samples(1) if s.origin == "deployed"]
        assert deployed and all(s.id.endswith("-deployed") for s in deployed)
        with_reply = [p for p in train if p.task == "chats" and p.meta.get("deployed_response") and p.id in drawn]
        assert [s.text for s in deployed] == [p.meta["deployed_response"] for p in with_reply]
        judged = {j.sample_id for j in store.judgments(1)}
        assert all(s.id in judged for s in deployed)
        assert info["samples"] == 5 * 2 + len(deployed)
    # Logs have no verifier: their held-out rows are ungraded, measured by the judge score.
    chats = result.iterations[0]["tasks"]["chats"]
    assert chats["pass_rate"] is None and chats["judge_score"] is not None


class _ScriptedWriter:
    """Wraps the tiny engine: writing requests get scripted prompts, everything else goes to the model."""

    def __init__(self, engine, texts):
        self.engine, self.texts = engine, texts

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, prompts, params, desc=""):
        if "Write one new task" in prompts[0]:
            return [[Completion(t, 5) for t in self.texts[: params.n]] for _ in prompts]
        return self.engine.generate(prompts, params, desc=desc)


def test_self_written_prompts_join_the_pool_and_are_stored_with_the_iteration(tiny_llama, tmp_path, monkeypatch):
    written = ["Describe a sunrise over the sea in two sentences.", "List three uses of a paperclip.",
               "Explain why the sky looks blue to a child."]
    original = SelfInstructTask.grow

    def scripted_grow(self, engine, pool, avoid, iteration, seed):
        return original(self, _ScriptedWriter(engine, written), pool, avoid, iteration, seed)

    monkeypatch.setattr(SelfInstructTask, "grow", scripted_grow)
    seeds = ["Write a short poem about autumn leaves.", "Give two tips for learning a new language.",
             "Summarise the plot of a fairy tale in one sentence.", "Suggest a name for a friendly robot."]
    source = {"type": "self_instruct", "name": "selfw", "seeds": seeds, "per_iteration": 3, "heldout_ratio": 0.25}
    autodidact.run(_sources_config(tiny_llama, tmp_path, [source]))
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        new = [p for p in store.prompts(split="train") if p.meta.get("origin") == "self_instruct"]
        assert {p.text for p in new} <= set(written) and new, "written prompts are stored"
        assert all(p.id.startswith("selfw-it1-") for p in new)
        info = store.stage_info(1, "generate")
        assert info["selfw/written"] == len(new) and info["selfw/kept"] == len(new)
        assert len(store.prompts(split="heldout")) == 1


def test_a_bad_source_file_fails_before_the_run_writes_anything(tiny_llama, tmp_path):
    sources = [{"type": "file", "name": "qa", "path": str(DATA / "empty.jsonl")}]
    with pytest.raises(AutodidactError, match="empty"):
        autodidact.run(_sources_config(tiny_llama, tmp_path, sources))
    assert not (tmp_path / "run").exists()


def test_documents_source_runs_in_the_loop_with_the_search_tool(tiny_llama, tmp_path, monkeypatch):
    # A random model writes no usable question/answer pairs: script the writing, keep everything else real.
    monkeypatch.setattr("autodidact.tasks.documents.pairs.write_pairs", _scripted_pairs)
    source = {"type": "documents", "name": "docs", "path": str(Path(__file__).parents[1] / "data" / "documents"),
              "chunk_chars": 300, "overlap_chars": 50, "heldout_ratio": 0.3, "search_first": True, "max_turns": 1,
              "questions": "model"}
    result = autodidact.run(_sources_config(tiny_llama, tmp_path, [source]))
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        heldout = store.prompts(split="heldout")
        train_chunks = {p.meta["chunk_id"] for p in store.prompts(split="train")}
        assert heldout and not train_chunks & {p.meta["chunk_id"] for p in heldout}  # held out by chunk
        # search_first: every answer starts from a search of the question; the transcript is the sample.
        answers = [s for s in store.samples(1) if s.prompt_id in {p.id for p in heldout}]
        assert answers and all(s.text.startswith("<search>") and "<results>" in s.text for s in answers)


def test_a_resumed_documents_run_searches_the_index_of_the_original_run(tiny_llama, tmp_path, monkeypatch, killed_at):
    # Killed after its questions were stored (in iteration 0's evaluation): the resumed run has no build() to
    # fill the search index, so it rebuilds it from the documents; it writes no question again.
    monkeypatch.setattr("autodidact.tasks.documents.pairs.write_pairs", _scripted_pairs)
    source = DOCUMENTS | {"search_first": True, "max_turns": 1, "search_top_k": 2}
    config = _sources_config(tiny_llama, tmp_path, [source])
    with pytest.raises(KeyboardInterrupt):  # killed after the prompts were stored
        autodidact.loop.run(config, plan=killed_at(config, "evaluate", 0))
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.get_meta("prompts_ready") and not store.stage_done(0, "evaluate")
        stored = store.prompts()

    def no_writing(*args, **kwargs):
        raise AssertionError("a resumed run writes no question again")

    monkeypatch.setattr("autodidact.tasks.documents.pairs.write_pairs", no_writing)
    result = autodidact.resume(tmp_path / "run")
    assert result.stop_reason == "reached max_iterations=1"
    # The original run's index: every chunk of the documents, embedded by the bundled embedder.
    index = SearchIndex(chunk_documents(load_documents(source["path"]), 300, 50), load_embedder("default"))
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.prompts() == stored
        heldout = store.prompts(split="heldout")
        assert heldout
        for it in (0, 1):  # search_first: each held-out answer opens with the search of its question and its results
            answers = {s.prompt_id: s.text for s in store.samples(it) if s.prompt_id.startswith("docs-heldout-")}
            assert set(answers) == {p.id for p in heldout}
            for p in heldout:
                question = p.meta["question"]
                opening = f"<search>{question}</search>" + format_results(index.search(question, 2))
                assert answers[p.id].startswith(opening)
    # GRPO's search tool on a resumed loop searches the same index.
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        ctx = build_context(load_config(tmp_path / "run" / CONFIG_FILE), tmp_path / "run", store)
        prepare_prompts(ctx)
        search = ctx.tasks["docs"].search_tool()
        assert search("bread dough") == format_results(index.search("bread dough", 2)).strip()


def _scripted_pairs(engine, chunks, n, template, desc=""):
    """A random model writes no usable question/answer pairs: one scripted pair per chunk, from its own text."""
    from autodidact.tasks.documents import qa

    return [qa.QAPair(f"What follows '{' '.join(c.text.split()[:6])}'?", " ".join(c.text.split()[6:12]), c.id)
            for c in chunks], 0


GRPO = {"method": "grpo", "lora_r": 2, "lora_alpha": 4, "batch_size": 4, "learning_rate": 1e-3}
DOCUMENTS = {"type": "documents", "name": "docs", "path": str(Path(__file__).parents[1] / "data" / "documents"),
             "chunk_chars": 300, "overlap_chars": 50, "heldout_ratio": 0.3, "max_turns": 2, "questions": "model"}


def test_grpo_with_the_search_tool_is_refused_at_start_on_a_template_without_tool_calls(tiny_llama, tmp_path,
                                                                                       monkeypatch):
    def no_writing(*args, **kwargs):
        raise AssertionError("the refusal comes before any question is written")

    monkeypatch.setattr("autodidact.tasks.documents.pairs.write_pairs", no_writing)
    config = _sources_config(tiny_llama, tmp_path, [DOCUMENTS], training=GRPO)  # the test template is plain ChatML
    with pytest.raises(AutodidactError, match=r"renders tool calls .* or use training\.method sft or dpo"):
        autodidact.run(config)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def tiny_tool_model(tiny_llama, tmp_path):
    """The tiny model with Qwen2.5's chat template (shipped with TRL), which renders tool calls."""
    import trl

    path = tmp_path / "tool-model"
    shutil.copytree(tiny_llama, path)
    config = path / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data["chat_template"] = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    config.write_text(json.dumps(data))
    (path / "chat_template.jinja").unlink(missing_ok=True)  # a template file would win over the config's
    return str(path)


def test_grpo_hands_trl_the_documents_search_tool(tiny_tool_model, tmp_path, monkeypatch):
    monkeypatch.setattr("autodidact.tasks.documents.pairs.write_pairs", _scripted_pairs)
    calls = []

    def recording_train_grpo(model, tokenizer, prompts, reward, *args, **kwargs):
        calls.append((prompts, kwargs))
        return train_grpo(model, tokenizer, prompts, reward, *args, **kwargs)  # TRL takes the tool on this template

    config = _sources_config(tiny_tool_model, tmp_path, [DOCUMENTS], training=GRPO)
    result = autodidact.loop.run(config, plan=plan_with(config, OnlineTrain(grpo=recording_train_grpo)))
    assert result.stop_reason == "reached max_iterations=1"
    [(prompts, kwargs)] = calls
    [search] = kwargs["tools"]
    assert search.__name__ == "search" and kwargs["max_tool_calls"] == 2
    found = search("bread dough")
    assert found.startswith("<results>\n[1] ") and found.endswith("</results>") and "[2] " in found  # search_top_k 2
    # The prompts ask for the function call, not for <search> tags that nothing would answer.
    assert prompts and all("call the search tool" in p.text and "<search>" not in p.text for p in prompts)
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        assert store.checkpoint(1) is not None
        assert store.stage_info(1, "train")["completions"] == 2 * 2  # 2 prompts x samples_per_prompt
        assert {s.origin for s in store.samples(1) if s.prompt_id in {p.id for p in prompts}} == {"online"}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([DOCUMENTS, DOCUMENTS | {"name": "more"}], "gives the model one search tool, but documents sources"),
        ([DOCUMENTS | {"search_first": True}], "set the documents source's search_first: false"),
    ],
)
def test_grpo_refuses_what_its_search_tool_cannot_do(tmp_path, sources, message):
    config = {"tasks": {"names": [], "sources": sources}, "training": GRPO}
    with pytest.raises(AutodidactError, match=message):
        validate_config(config)


def test_grpo_warns_once_that_deployed_replies_are_not_candidates(tiny_llama, tmp_path, caplog):
    sources = [{"type": "logs", "name": "chats", "path": str(DATA / "logs.jsonl"), "heldout_ratio": 0.25}]
    config = validate_config(_sources_config(tiny_llama, tmp_path, sources, training=GRPO))
    (tmp_path / "run").mkdir()
    with RunStore(tmp_path / "run" / STORE_FILE) as store, caplog.at_level("WARNING", logger="autodidact.loop.context"):
        build_context(config, tmp_path / "run", store)
    warned = [r.getMessage() for r in caplog.records if "deployed replies" in r.getMessage()]
    assert warned == [
        "training.method 'grpo' samples its own completions: the deployed replies of logs sources chats are not "
        "candidates (they are with sft and dpo)"
    ]
