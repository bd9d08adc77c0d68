"""Decay of the agreement signal: majority answers that flip, and kept answers that are no longer right.

Where a task is judged by self-consistency, the model trains on the answers
most of its own samples agree on. As it trains on them its answers grow alike,
so more prompts pass the agreement floor, but the majority may be wrong more
often (docs/RESULTS.md: right among kept 69% -> 30% in three iterations).
Three figures follow it on a fixed probe of held-out prompts, sampled every
iteration with the same temperature and seed:

- `vote_flip_rate`: among probe prompts with a majority answer in this and the
  previous iteration, the share whose majority changed;
- `vote_kept`: the share of probe prompts whose majority answer reaches the
  agreement floor (what selection would keep);
- `vote_right_kept`: the share of those kept majority answers the task's
  verifier passes. The probe prompts are held out, so grading them is
  evaluation, as the held-out pass rate is: no verdict reaches training.

The same vote (`majority_vote`) and flip count (`flip_counts`) give the
after-run figures of `autodidact decay` (apps/decay.py) on the training samples.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING

from autodidact.judges.consistency import Extractor, normalise_answer

if TYPE_CHECKING:
    from autodidact.config import RunConfig

Metrics = Mapping[str, float | None]


@dataclass(frozen=True)
class Vote:
    """One prompt's vote among its samples.

    `majority` is the most frequent normalised answer (ties: the first given,
    as the self-consistency judge decides), `share` its count over the samples
    that gave an answer, `first` the index of the first sample that gave it,
    and `right` the verifier's verdict on that sample (None: not graded).
    """

    prompt_id: str
    majority: str | None
    share: float
    first: int | None = None
    right: bool | None = None


@dataclass(frozen=True)
class Flips:
    """Majority changes between two iterations, over the prompts with a majority answer in both."""

    shared: int
    flipped: int
    right_to_wrong: int
    wrong_to_right: int

    @property
    def rate(self) -> float | None:
        return self.flipped / self.shared if self.shared else None


def _answer(text: str, extract: Extractor) -> str | None:
    try:
        answer = extract(text)
    except Exception:  # a user extractor's bug leaves this sample unanswered, as the judge does
        return None
    if answer is None:
        return None
    return normalise_answer(str(answer)) or None


def passes(verdict: float | None) -> bool | None:
    """A verifier's verdict as right or wrong (at least 0.5 passes); None stays ungraded."""
    return None if verdict is None else verdict >= 0.5


def majority_vote(prompt_id: str, texts: Sequence[str], extract: Extractor) -> Vote:
    """The vote of one prompt's sample texts (no verdict yet: `right` is None)."""
    answers = [_answer(text, extract) for text in texts]
    votes = Counter(a for a in answers if a is not None)  # first-seen order: ties go to the earliest answer
    if not votes:
        return Vote(prompt_id, None, 0.0)
    majority, count = votes.most_common(1)[0]
    return Vote(prompt_id, majority, count / sum(votes.values()), answers.index(majority))


def flip_counts(previous: Mapping[str, Vote], current: Mapping[str, Vote]) -> Flips:
    """Flips of the majority answer between `previous` and `current` (prompt id -> vote).

    Right -> wrong and wrong -> right count only flips whose two majorities both have a verdict.
    """
    shared = flipped = right_to_wrong = wrong_to_right = 0
    for prompt_id, now in current.items():
        before = previous.get(prompt_id)
        if before is None or before.majority is None or now.majority is None:
            continue
        shared += 1
        if before.majority == now.majority:
            continue
        flipped += 1
        right_to_wrong += before.right is True and now.right is False
        wrong_to_right += before.right is False and now.right is True
    return Flips(shared, flipped, right_to_wrong, wrong_to_right)


def signal_metrics(previous: Sequence[Vote], current: Sequence[Vote], min_share: float) -> dict[str, float | None]:
    """`vote_flip_rate`, `vote_kept` and `vote_right_kept` of one iteration's probe (see the module docstring).

    Args:
        previous: the previous iteration's probe votes (empty at iteration 0: no flip rate).
        current: this iteration's probe votes, with verdicts.
        min_share: the agreement floor a majority needs to count as kept.
    """
    if not current:
        return {}
    flips = flip_counts({v.prompt_id: v for v in previous}, {v.prompt_id: v for v in current})
    kept = [v for v in current if v.majority is not None and v.share >= min_share]
    graded = [v.right for v in kept if v.right is not None]
    return {
        "vote_flip_rate": flips.rate,
        "vote_kept": len(kept) / len(current),
        "vote_right_kept": sum(graded) / len(graded) if graded else None,
    }


def decay_alert(history: Sequence[Metrics], max_flip_rate: float, max_drop: float) -> str | None:
    """An alert when the last iteration's flip rate exceeds `max_flip_rate`, or its right-among-kept share fell
    by more than `max_drop` of the iteration-0 value (skipped when that is None or 0), else None."""
    if len(history) < 2:
        return None
    found = []
    rate = history[-1].get("vote_flip_rate")
    if rate is not None and rate > max_flip_rate:
        found.append(
            f"{rate:.0%} of the probe prompts' majority answers changed since the previous iteration "
            f"(more than monitors.signal_decay.max_flip_rate {max_flip_rate:.0%})"
        )
    before, now = history[0].get("vote_right_kept"), history[-1].get("vote_right_kept")
    if before and now is not None and (before - now) / before > max_drop:
        found.append(
            f"the kept majority answers the verifier passes fell from {before:.0%} at iteration 0 to {now:.0%} "
            f"(-{(before - now) / before:.0%}, more than monitors.signal_decay.max_drop {max_drop:.0%})"
        )
    if not found:
        return None
    return (
        f"the agreement signal is decaying at iteration {len(history) - 1}: {'; '.join(found)}. Agreement among "
        "the model's own answers is judging less well as they grow alike: consider a rising floor "
        "(selection.min_score_schedule), replaying the base model's examples (selection.replay_base), or stopping."
    )


def vote_tasks(config: RunConfig) -> dict[str, str]:
    """Task -> extractor, for every task of the run whose judge (judge.tasks, else judge) is self_consistency."""
    sections = {name: config.judge.tasks.get(name, config.judge) for name in config.tasks.all_names()}
    return {name: s.extractor for name, s in sections.items() if s.method == "self_consistency"}


def votes_to_json(votes: Sequence[Vote]) -> str:
    """Votes as stored between iterations (the next iteration's flips need them, also after a resume)."""
    return json.dumps([astuple(v) for v in votes])


def votes_from_json(text: str | None) -> list[Vote]:
    """Votes stored by `votes_to_json` ([] for None)."""
    return [Vote(*row) for row in json.loads(text)] if text else []
