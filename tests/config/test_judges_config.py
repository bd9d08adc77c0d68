"""Config of the pairwise, contrastive, self-consistency and ensemble judges: they validate, build, fail clearly."""

from __future__ import annotations

import pytest

from autodidact.config import load_config
from autodidact.errors import AutodidactError
from autodidact.judges import JUDGES, build_judge
from autodidact.judges.consistency import SelfConsistencyJudge
from autodidact.judges.contrastive import ContrastiveJudge
from autodidact.judges.ensemble import EnsembleJudge
from autodidact.judges.pairwise import PairwiseJudge

NEW_METHODS = {
    "pairwise": (["judge.pairwise_schedule=cycle", "judge.pairwise_aggregate=win_rate"], PairwiseJudge),
    "contrastive": (
        ["judge.reasoning_tokens=32", "judge.pairwise_schedule=random_k", "judge.pairwise_k=1"],
        ContrastiveJudge,
    ),
    "self_consistency": (["judge.extractor=boxed"], SelfConsistencyJudge),
    "ensemble": (
        ["judge.members=[{method: direct}, {method: rubric, criteria: [correct]}]", "judge.combine=majority"],
        EnsembleJudge,
    ),
}


class NoEngine:
    supports_logprobs = True


@pytest.mark.parametrize("method", sorted(NEW_METHODS))
def test_each_new_method_validates_and_builds(method):
    overrides, cls = NEW_METHODS[method]
    config = load_config(None, [f"judge.method={method}", *overrides])
    judge = build_judge(config.judge, NoEngine(), {})
    assert isinstance(judge, cls) and judge.name == config.judge.method


def test_all_new_methods_are_registered():
    assert set(NEW_METHODS) <= set(JUDGES)
    assert len(NEW_METHODS) == 4


def test_built_judges_get_their_settings():
    config = load_config(None, ["judge.method=contrastive", "judge.mode=generate", *NEW_METHODS["contrastive"][0]])
    judge = build_judge(config.judge, NoEngine(), {})
    assert (judge.mode, judge.reasoning_tokens, judge.schedule, judge.k) == ("generate", 32, "random_k", 1)
    config = load_config(None, ["judge.method=ensemble", *NEW_METHODS["ensemble"][0]])
    ensemble = build_judge(config.judge, NoEngine(), {})
    assert ensemble.labels == ["0:direct", "1:rubric"] and ensemble.members[1].criteria == ["correct"]
    assert ensemble.combine == "majority"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["judge.method=pairwize"], "unknown judge 'pairwize'. Choose one of: "),
        (["judge.method=pairwize"], "Did you mean 'pairwise'?"),
        (["judge.method=ensemble"], "judge: method 'ensemble' needs at least one entry in members or personas"),
        (["judge.method=ensemble", "judge.members=[{method: direkt}]"], "unknown judge 'direkt'"),
        (
            ["judge.method=ensemble", "judge.members=[{method: direct, colour: red}]"],
            "unknown key 'judge.members.0.colour'",
        ),
        (["judge.method=self_consistency", "judge.extractor=lastnumber"], "judge.extractor: unknown extractor 'lastnumber'"),
        (["judge.method=pairwise", "judge.pairwise_schedule=swiss"], "config: judge.pairwise_schedule: Input should be"),
        (["judge.method=contrastive", "judge.pairwise_aggregate=elo"], "config: judge.pairwise_aggregate: Input should be"),
        (["judge.method=ensemble", "judge.personas=[x]", "judge.combine=median"], "config: judge.combine: Input should be"),
        (["judge.method=pairwise", "judge.pairwise_k=0"], "config: judge.pairwise_k: Input should be"),
    ],
)
def test_bad_judge_settings_give_one_line_errors(overrides, expected):
    with pytest.raises(AutodidactError) as err:
        load_config(None, overrides)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_personas_alone_make_an_ensemble_and_a_dotted_extractor_validates():
    config = load_config(None, ["judge.method=ensemble", "judge.personas=[You are terse.]"])
    assert config.judge.personas == ["You are terse."] and config.judge.members == []
    # A dotted extractor is checked for its shape here; it is imported when the judge is built.
    config = load_config(None, ["judge.method=self_consistency", "judge.extractor=my_pkg.checks:answer"])
    assert config.judge.extractor == "my_pkg.checks:answer"
