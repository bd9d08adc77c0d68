"""The loop with relative judges: held-out scored by a direct judge, judge AUC, critique-and-revise across a resume."""

from __future__ import annotations

import math
import re
from unittest.mock import ANY

import pytest
from test_loop import tiny_config

import autodidact
import autodidact.loop
from autodidact.engines import Completion
from autodidact.errors import AutodidactError
from autodidact.evaluation import roc_auc
from autodidact.loop import STORE_FILE
from autodidact.store import RunStore
from autodidact.tasks import get_task

_PAIR = re.compile(r"\[Response A\]\n<<<RESPONSE>>>\n(.*?)\n<<<END.*?\[Response B\]\n<<<RESPONSE>>>\n(.*?)\n<<<", re.S)
_QUESTION = re.compile(r"\[User request\]\n(.*?)\n\n\[Response to improve\]", re.S)


def test_pairwise_run_scores_heldout_with_a_direct_judge_and_records_the_auc(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, name="pw", max_iterations=1)
    config["judge"] = {"method": "pairwise", "batch_size": 8}
    result = autodidact.run(config)

    assert [row["heldout_judge"] for row in result.iterations] == ["direct", "direct"]
    with RunStore(tmp_path / "pw" / STORE_FILE) as store:
        heldout = {p.id: p for p in store.prompts(split="heldout")}
        for it in (0, 1):
            assert store.stage_info(it, "evaluate") == {"heldout_judge": "direct", "peak_rss_mib": ANY}
            answers = [s for s in store.samples(it) if s.prompt_id in heldout]
            by_sample = {j.sample_id: j for j in store.judgments(it)}
            assert len(answers) == 8 and all(by_sample[s.id].judge == "direct" for s in answers)
            assert all(by_sample[s.id].score is not None for s in answers)  # not "needs >= 2 samples"
            verdicts = [get_task(heldout[s.prompt_id].task).verify(heldout[s.prompt_id], s.text) for s in answers]
            expected = roc_auc([by_sample[s.id].score for s in answers], verdicts)
            assert store.metric(it, "judge_auc") == expected
            assert result.iterations[it]["judge_auc"] == expected
        train = [s for s in store.samples(1) if s.prompt_id not in heldout]
        assert {j.judge for j in store.judgments(1) if j.sample_id in {s.id for s in train}} == {"pairwise"}


# --- critique and revise ----------------------------------------------------------


def revision_for(question: str) -> str:
    """What the scripted policy writes when asked to revise: nothing for odd-length questions."""
    return "" if len(question) % 2 else f"fixed answer ({len(question)} characters asked)"


class ScriptedEngine:
    """Stands in for the policy's engine: sample k is "answer k"; the judge prefers the smaller text.

    Both orders of a pair agree (the verdict follows the content), so every
    pair of distinct samples is decided and its loser is sent for revision.
    """

    supports_logprobs = True
    revise_prompts: list[str] = []  # every revision prompt seen, across instances

    def __init__(self, *args, **kwargs):
        pass

    def render(self, messages):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def generate(self, prompts, params, desc=""):
        outputs = []
        for prompt in prompts:
            if "[Response to improve]" in prompt:
                ScriptedEngine.revise_prompts.append(prompt)
                outputs.append([Completion(revision_for(_QUESTION.search(prompt).group(1)), 4)])
            elif _PAIR.search(prompt):
                a, b = _PAIR.search(prompt).groups()
                letter = "A" if a < b else "B"
                outputs.append([Completion(f"Response {letter} is better.\nBetter response: {letter}", 9)])
            else:
                outputs.append([Completion(f"answer {k}", 2) for k in range(params.n)])
        return outputs

    def continuation_logprobs(self, prompts, continuations, desc=""):
        if len(continuations) == 2:  # the verdict slot: 0.9 on the smaller response's letter
            rows = [(0.9, 0.1) if a < b else (0.1, 0.9) for a, b in (_PAIR.search(p).groups() for p in prompts)]
            return [[math.log(x) for x in row] for row in rows]
        return [[math.log(1 / len(continuations))] * len(continuations) for _ in prompts]  # direct: score 5


def revise_config(model_dir: str, out) -> dict:
    config = tiny_config(model_dir, out, name="rev", max_iterations=1)
    config["judge"] = {"method": "contrastive", "pairwise_aggregate": "win_rate", "batch_size": 8}
    config["selection"] = {"revise": True}
    return config


def test_revisions_are_stored_by_the_judge_stage_and_survive_a_resume(tiny_llama, tmp_path, monkeypatch, killed_at):
    import autodidact.engines.serving

    monkeypatch.setattr(autodidact.engines.serving, "TransformersEngine", ScriptedEngine)
    monkeypatch.setattr(ScriptedEngine, "revise_prompts", [])
    config = revise_config(tiny_llama, tmp_path)
    with pytest.raises(KeyboardInterrupt):  # killed before selection commits
        autodidact.loop.run(config, plan=killed_at(config, "select", 1))
    run_dir = tmp_path / "rev"

    # 2 tasks x 3 prompts, 2 samples each: one decided pair per prompt, "answer 1" loses and is sent for revision.
    assert len(ScriptedEngine.revise_prompts) == 6
    with RunStore(run_dir / STORE_FILE) as store:
        assert store.stage_done(1, "judge") and not store.stage_done(1, "select")
        prompts = {p.id: p for p in store.prompts(split="train")}
        train_ids = sorted({s.prompt_id for s in store.samples(1) if s.prompt_id in prompts})
        expected = {f"it1-{pid}-rev0": revision_for(prompts[pid].text) for pid in train_ids}
        expected = {sid: text for sid, text in expected.items() if text}
        assert 0 < len(expected) < 6, "the seed should give both empty and non-empty revisions"
        revisions = {s.id: s for s in store.samples(1) if s.origin == "revision"}
        assert {sid: s.text for sid, s in revisions.items()} == expected
        assert {s.id for s in store.samples(1) if "-rev" in s.id} == set(revisions)  # the origin column says it
        assert {s.index for s in revisions.values()} == {3}  # after the generated samples 0, 1 and the deployed slot 2
        info = store.stage_info(1, "judge")
        assert (info["revisions"], info["revisions_empty"]) == (len(expected), 6 - len(expected))
        assert info["judge_tokens"] == 12 * 9  # 6 pairs x 2 orders, 9 tokens per scripted explanation

    ScriptedEngine.revise_prompts.clear()
    result = autodidact.resume(run_dir)

    assert ScriptedEngine.revise_prompts == []  # read back from the store, not rewritten
    assert result.iterations[1]["kept"] == 6 + len(expected)
    with RunStore(run_dir / STORE_FILE) as store:
        selection = store.selection(1)
        assert [(e.completion, e.score) for e in selection[:6]] == [("answer 0", 10.0)] * 6
        assert {e.sample_id: (e.completion, e.score) for e in selection[6:]} == {
            sid: (text, None) for sid, text in expected.items()
        }
        assert store.stage_info(1, "select") == {"kept": 6 + len(expected), "revisions": len(expected), "peak_rss_mib": ANY}
        assert store.stage_info(1, "train")["examples"] == 6 + len(expected)
        assert store.stage_info(1, "evaluate") == {"heldout_judge": "direct", "peak_rss_mib": ANY}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"judge": {"method": "pairwise"}},
            "config: selection.revise needs judge.method 'contrastive' (its explanations say what to fix), not "
            "'pairwise'; set judge.method=contrastive or selection.revise=false.",
        ),
        (
            {"judge": {"method": "contrastive"}, "training": {"method": "dpo"}},
            "config: selection.revise adds SFT examples, so it needs training.method 'sft'; "
            "set training.method=sft or selection.revise=false.",
        ),
    ],
)
def test_revise_needs_the_contrastive_judge_and_sft(tmp_path, overrides, message):
    with pytest.raises(AutodidactError) as err:
        autodidact.run({"name": "x", "output_dir": str(tmp_path), "selection": {"revise": True}, **overrides})
    assert str(err.value) == message
    assert not (tmp_path / "x").exists()


def test_grpo_run_trains_online_and_stores_its_rollouts_as_samples_and_judgments(tiny_llama, tmp_path):
    config = tiny_config(tiny_llama, tmp_path, name="grpo", max_iterations=1)
    config["training"] = {"method": "grpo", "lora_r": 2, "lora_alpha": 4, "batch_size": 4, "learning_rate": 1e-3}
    config["monitors"] = {"diversity": {"prompts": 0}}
    result = autodidact.run(config)

    assert result.stop_reason == "reached max_iterations=1"
    with RunStore(tmp_path / "grpo" / STORE_FILE) as store:
        generate = store.stage_info(1, "generate")
        assert generate["online"] is True and len(generate["prompt_ids"]) == 6  # 2 tasks x 3 prompts drawn
        # GRPO's own plan: no judge or select stage (it samples and judges inside training).
        assert not store.stage_done(1, "judge") and not store.stage_done(1, "select")
        assert list(store.stage_seconds(1)) == ["generate", "train", "evaluate", "monitor"]
        train = store.stage_info(1, "train")
        rollouts = [s for s in store.samples(1) if s.origin == "online"]
        assert rollouts and all(re.search(r"-g\d+$", s.id) for s in rollouts)
        # One pass: every drawn prompt sampled samples_per_prompt (2) times, each completion judged once.
        assert train["completions"] == len(rollouts) == 6 * 2
        assert {s.prompt_id for s in rollouts} == set(generate["prompt_ids"])
        judged = {j.sample_id: j for j in store.judgments(1)}
        assert all(s.id in judged for s in rollouts)
        scores = [judged[s.id].score for s in rollouts if judged[s.id].score is not None]
        assert train["mean_reward"] == pytest.approx(sum(scores) / len(scores))
        assert store.checkpoint(1) is not None
    # The monitors read the rollouts like any iteration's judged samples.
    assert result.iterations[1]["train_judge_score"] == pytest.approx(train["mean_reward"])
