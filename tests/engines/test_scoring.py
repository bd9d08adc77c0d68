"""The shared-prefix scorer (engines/scoring.py) must give the log-probabilities of scoring every row whole."""

from __future__ import annotations

import pytest
import torch

from autodidact.engines import TransformersEngine
from autodidact.engines.scoring import ScoreOptions, Stage, appended_groups, plan_score_batches, shared_stages
from autodidact.judges.prompts import DIRECT_ANSWER_PREFIX, direct_prompt
from autodidact.judges.scoring import SCORES
from autodidact.models import load_model
from tiny_models import FAMILIES

QUESTIONS = ["What is 2 + 3?", "Rate the answer please, and say why in one short line.", "x"]
# Ragged responses: one token, empty, long.
RESPONSES = ["5", "The answer is 5 because 2 plus 3 is 5.", "", "score score score rate the number " * 3]
# Single-token scores, and two multi-token continuations that append different tokens.
CONTINUATIONS = [*SCORES, "1 0", "what is"]


def _judge_prompts(engine) -> list[str]:
    rows = [
        engine.render([{"role": "user", "content": direct_prompt(q, r)}]) + DIRECT_ANSWER_PREFIX
        for q in QUESTIONS
        for r in RESPONSES[: 2 + len(q) % 3]
    ]
    # A second sample identical to the first, and a row that shares no prefix with the others.
    return rows + [rows[0], "plain text that shares no prefix with the others. Score: "]


def _engine(path: str, share: bool, batch_size: int) -> TransformersEngine:
    model, tokenizer = load_model(path, dtype="float32", device="cpu")
    engine = TransformersEngine(model, tokenizer, score_batch_size=batch_size)
    engine.score_options = ScoreOptions(share_prefix=share)
    return engine


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_prefix_scores_equal_whole_rows_on_every_family(tiny_model_dirs, family):
    plain = _engine(tiny_model_dirs[family], share=False, batch_size=4)
    prompts = _judge_prompts(plain)
    cont_ids = plain._continuation_ids(prompts[0], CONTINUATIONS)[1]
    assert max(len(ids) for ids in cont_ids) > 1 and len(appended_groups(cont_ids)) >= 2
    want = torch.tensor(plain.continuation_logprobs(prompts, CONTINUATIONS))
    for batch_size in (1, 4):  # blocks of 4 rows (groups split across blocks), and one block in batches of 4
        shared = _engine(tiny_model_dirs[family], share=True, batch_size=batch_size)
        got = torch.tensor(shared.continuation_logprobs(prompts, CONTINUATIONS))
        assert got.shape == (len(prompts), len(CONTINUATIONS))
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()


def test_a_batch_runs_its_shared_head_once_then_each_questions_prefix_then_each_row(tiny_model_dirs):
    engine = _engine(tiny_model_dirs["llama"], share=True, batch_size=64)
    rows = [engine._encode(p) for p in _judge_prompts(engine)[:-2]]  # three questions, distinct responses
    stages = shared_stages(rows, keep=2)
    assert [len(s.segments) for s in stages] == [1, 3, len(rows)]
    head = rows[0][: len(stages[0].segments[0])]
    assert all(row[: len(head)] == head for row in rows) and len({row[len(head)] for row in rows}) > 1
    groups, leaves = stages[1], stages[2]
    assert groups.parents == [0, 0, 0] and sorted(set(leaves.parents)) == [0, 1, 2]
    for i, row in enumerate(rows):  # each row is exactly head + its group's prefix + its own rest
        assert head + groups.segments[leaves.parents[i]] + leaves.segments[i] == row
        assert len(leaves.segments[i]) >= 2  # the positions whose logits are read run in the row's own stage
    whole = sum(len(r) for r in rows)
    run = sum(len(seg) for s in stages for seg in s.segments)
    assert run < 0.8 * whole


def test_stages_on_token_lists():
    # Two rows share [1, 2, 3, 4]; a third shares only [1]; identical rows share all but the scored token.
    rows = [[1, 2, 3, 4, 5], [1, 9], [1, 2, 3, 4, 6, 7], [1, 2, 3, 4, 5]]
    assert shared_stages(rows, keep=1) == [
        Stage([[1]], None),
        Stage([[2, 3, 4], []], [0, 0]),
        Stage([[5], [9], [6, 7], [5]], [0, 1, 0, 0]),
    ]
    # Nothing shared: one stage, every row whole; a lone row too.
    assert shared_stages([[1, 2], [3, 4]], keep=1) == [Stage([[1, 2], [3, 4]], None)]
    assert shared_stages([[1, 2, 3]], keep=2) == [Stage([[1, 2, 3]], None)]


def test_plan_puts_rows_that_share_a_prefix_together():
    encoded = [[5, 1], [1, 2, 3], [5, 1, 1], [1, 2]]
    assert plan_score_batches(encoded, 1, ScoreOptions(share_prefix=True, block_batches=2)) == [[3, 1], [0, 2]]
    assert plan_score_batches(encoded, 2, ScoreOptions(share_prefix=False)) == [[1, 2], [0, 3]]


def test_no_pass_computes_logits_for_every_position(tiny_model_dirs):
    engine = _engine(tiny_model_dirs["qwen2"], share=True, batch_size=64)
    prompts = _judge_prompts(engine)
    keep = max(len(ids) for ids in engine._continuation_ids(prompts[0], CONTINUATIONS)[1])  # positions read
    widths = []
    hook = engine.model.register_forward_hook(lambda m, args, out: widths.append(out.logits.shape[1]))
    try:
        engine.continuation_logprobs(prompts, CONTINUATIONS)
    finally:
        hook.remove()
    assert len(widths) > len(CONTINUATIONS) - len(SCORES) + 1  # shared stages ran: more than one pass per group
    assert max(widths) == keep  # (B, keep, V) logits at most, never (B, T, V)


def test_a_sliding_window_shorter_than_the_padded_stages_falls_back_to_whole_rows(tiny_model_dirs):
    plain = _engine(tiny_model_dirs["mistral"], share=False, batch_size=64)
    shared = _engine(tiny_model_dirs["mistral"], share=True, batch_size=64)
    for engine in (plain, shared):
        engine.model.config.sliding_window = 48
    prompts = _judge_prompts(plain)
    calls = []
    hook = shared.model.register_forward_hook(lambda m, args, out: calls.append(1))
    got = shared.continuation_logprobs(prompts, SCORES)
    hook.remove()
    assert len(calls) == 1  # one whole-row pass: the shared stages would put padding inside the window
    want = plain.continuation_logprobs(prompts, SCORES)
    assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=1e-5, rtol=0)
