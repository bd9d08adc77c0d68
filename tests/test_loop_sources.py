"""Task sources inside the loop on a tiny model: files, logs with deployed replies, self-written prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.test_loop import tiny_config

import autodidact
from autodidact.engines import Completion
from autodidact.errors import AutodidactError
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore
from autodidact.tasks.self_instruct import SelfInstructTask

DATA = Path(__file__).parent / "data" / "sources"


def _sources_config(model: str, out, sources: list[dict], **extra) -> dict:
    config = tiny_config(model, out, max_iterations=1)
    config["tasks"] = {"names": [], "sources": sources, "prompts_per_iteration": 2}
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
        deployed = [s for s in store.samples(1) if s.id.endswith("-deployed")]
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
    from autodidact.tasks.documents import qa

    # A random model writes no usable question/answer pairs: script the writing, keep everything else real.
    def scripted_pairs(engine, chunks, n, template, desc=""):
        return [qa.QAPair(f"What follows '{' '.join(c.text.split()[:6])}'?", " ".join(c.text.split()[6:12]), c.id)
                for c in chunks], 0

    monkeypatch.setattr("autodidact.tasks.documents.task.write_pairs", scripted_pairs)
    source = {"type": "documents", "name": "docs", "path": str(Path(__file__).parent / "data" / "documents"),
              "chunk_chars": 300, "overlap_chars": 50, "heldout_ratio": 0.3, "search_first": True, "max_turns": 1}
    result = autodidact.run(_sources_config(tiny_llama, tmp_path, [source]))
    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "run" / STORE_FILE) as store:
        heldout = store.prompts(split="heldout")
        train_chunks = {p.meta["chunk_id"] for p in store.prompts(split="train")}
        assert heldout and not train_chunks & {p.meta["chunk_id"] for p in heldout}  # held out by chunk
        # search_first: every answer starts from a search of the question; the transcript is the sample.
        answers = [s for s in store.samples(1) if s.prompt_id in {p.id for p in heldout}]
        assert answers and all(s.text.startswith("<search>") and "<results>" in s.text for s in answers)
