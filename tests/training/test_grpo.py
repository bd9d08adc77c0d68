"""GRPO: the reward moves the policy, failed rewards do not, LoRA only, config errors a user can fix."""

from __future__ import annotations

import copy

import pytest
import torch

from autodidact.config import GenerationConfig, TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.models import load_model
from autodidact.records import Prompt
from autodidact.training import prepare_policy, train_grpo

PROMPTS = [Prompt(f"p{i}", "t", "train", [{"role": "user", "content": f"What is {i} + 1?"}]) for i in range(4)]
CFG = dict(lora_r=4, lora_alpha=8, learning_rate=2e-2, batch_size=8)  # 8 completions = 2 prompts x 4 per step
GEN = GenerationConfig(samples_per_prompt=4, max_new_tokens=8, temperature=1.0, top_p=1.0)


def digit_share(prompts: list[Prompt], texts: list[str]) -> list[float | None]:
    """Reward: the share of the response's characters that are digits (random tiny models emit some)."""
    return [sum(c.isdigit() for c in t) / max(len(t), 1) for t in texts]


def response_logp(model, tokenizer, prompt: Prompt, text: str) -> float:
    """log P(text | chat-formatted prompt) under `model`, summed over the response tokens."""
    ids = tokenizer.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    x = torch.tensor([ids + tokenizer.encode(text, add_special_tokens=False)])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), dim=-1)
    return logps.gather(-1, x[0, 1:, None])[len(ids) - 1 :].sum().item()


@pytest.fixture
def policy_and_tokenizer(tiny_llama):
    model, tokenizer = load_model(tiny_llama, dtype="float32", device="cpu")
    return prepare_policy(model, TrainingConfig(**CFG)), tokenizer


def test_grpo_makes_higher_rewarded_completions_more_likely_and_trains_only_the_adapter(policy_and_tokenizer):
    """The statistic is what GRPO ascends: sum over every scored completion of (reward - its group's
    mean) x the change in its log-probability. A fixed target text would not do on this model: its
    random lm_head (which LoRA leaves alone) keeps every logit within about +-0.6 of uniform, so no
    adapter makes one text much likelier, while rewards mapped to the wrong prompt or a flipped sign
    would give a sum near 0 or below it (positive for 10 of 10 seeds tried)."""
    policy, tokenizer = policy_and_tokenizer
    before = copy.deepcopy(policy)
    adapters = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    base = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    scored: list[tuple[list[Prompt], list[str], list[float | None]]] = []

    def reward(prompts, texts):
        scores = digit_share(prompts, texts)
        scored.append((prompts, texts, scores))
        return scores

    result = train_grpo(policy, tokenizer, PROMPTS, reward, TrainingConfig(**CFG, epochs=2.0), GEN, seed=0)

    assert (result.examples, result.steps, result.completions, result.failed_rewards) == (4, 4, 32, 0)
    all_scores = [s for _, _, scores in scored for s in scores]
    assert len(all_scores) == 32 and result.mean_reward == pytest.approx(sum(all_scores) / 32)
    assert result.tokens > 32 and result.loss is not None and result.seconds > 0
    ascent = 0.0
    for prompts, texts, scores in scored:
        assert len(prompts) == 8 and all(p.id == prompts[g].id for g in (0, 4) for p in prompts[g : g + 4])
        for g in (0, 4):  # one group of 4 completions per prompt
            mean = sum(scores[g : g + 4]) / 4
            for p, text, score in zip(prompts[g : g + 4], texts[g : g + 4], scores[g : g + 4]):
                change = response_logp(policy, tokenizer, p, text) - response_logp(before, tokenizer, p, text)
                ascent += (score - mean) * change
    assert ascent > 0.1
    assert adapters and all("lora_" in n for n in adapters)
    assert all(not torch.equal(adapters[n], p) for n, p in policy.named_parameters() if n in adapters)
    assert all(torch.equal(base[n], p) for n, p in policy.named_parameters() if n in base)
    assert list(policy.peft_config) == ["default"] and not policy.training  # no second adapter, back in eval


@pytest.mark.parametrize("failed", [None, 0.0])
def test_a_failed_reward_is_left_out_not_read_as_zero(policy_and_tokenizer, failed):
    """Half the completions score 1.0, the others fail. Left out, every group's scored completions
    tie, so no advantage and no update; read as 0 (the contrast case), the policy would move."""
    policy, tokenizer = policy_and_tokenizer
    adapters = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}

    def reward(prompts, texts):
        return [1.0 if i % 2 == 0 else failed for i in range(len(texts))]

    result = train_grpo(policy, tokenizer, PROMPTS, reward, TrainingConfig(**CFG), GEN, seed=0)

    unchanged = all(torch.equal(adapters[n], p) for n, p in policy.named_parameters() if n in adapters)
    assert result.steps == 2 and result.completions == 16
    if failed is None:
        assert unchanged and result.failed_rewards == 8 and result.mean_reward == 1.0
    else:
        assert not unchanged and result.failed_rewards == 0 and result.mean_reward == 0.5


def test_configurations_grpo_cannot_train_are_errors_that_name_the_fix(policy_and_tokenizer):
    policy, tokenizer = policy_and_tokenizer
    config = TrainingConfig(**CFG)

    def train(generation=GEN, cfg=config, prompts=PROMPTS, **kwargs):
        return train_grpo(policy, tokenizer, prompts, digit_share, cfg, generation, seed=0, **kwargs)

    with pytest.raises(AutodidactError, match="samples_per_prompt to 2 or more"):
        train(GEN.model_copy(update={"samples_per_prompt": 1}))
    with pytest.raises(AutodidactError, match="temperature above 0"):
        train(temperature=0.0)
    with pytest.raises(AutodidactError, match="multiple of generation.samples_per_prompt"):
        train(GEN.model_copy(update={"samples_per_prompt": 3}))
    with pytest.raises(AutodidactError, match="needs 2 prompts per step but has 1"):
        train(prompts=PROMPTS[:1])
    with pytest.raises(AutodidactError, match="renders tool calls"):  # the test template is plain ChatML

        def add(a: int, b: int) -> int:
            """Add two integers.

            Args:
                a: The first integer.
                b: The second integer.
            """
            return a + b

        train(tools=[add])
    assert train(prompts=[]).steps == 0  # nothing to train on: no error, no step
