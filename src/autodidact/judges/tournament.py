"""Tournaments among the samples of one prompt: who meets whom, and scores from the results.

The pairwise and contrastive judges supply the comparisons; everything here
is model-free. Each scheduled pair is compared in both orders, (x as A, y as
B) and (y as A, x as B). A win counts only when both orders name the same
sample; when they disagree (the judge followed the position, not the content)
the pair is a tie. When either order failed, the pair has no result.

Per-sample scores stay on the 0-10 scale:
- win_rate: 10 x (wins + ties/2) / pairs played.
- bradley_terry: 10 x P(beating an opponent of the group's average strength),
  i.e. 10 x sigmoid(theta_i - mean theta), with theta the fitted log-strengths.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from autodidact.judges.base import JudgeItem, JudgeResult
from autodidact.records import Judgment

Schedule = Literal["round_robin", "cycle", "random_k"]
Aggregate = Literal["bradley_terry", "win_rate"]
Choice = Literal["A", "B", "="]  # "=": the judge had exactly no preference

_FIRST_WINS = {"A": 1.0, "B": 0.0, "=": 0.5}  # result for the sample shown as A
PRIOR_GAMES = 1.0  # virtual tied games per sample vs a reference of strength 1 (keeps BT finite)


class Verdict(NamedTuple):
    """One ordered comparison: which position the judge preferred; `choice` None means it failed."""

    choice: Choice | None
    rationale: str = ""
    raw: str = ""
    error: str | None = None


# Judges (x as A, y as B) for every pair given, one Verdict each, in order.
Compare = Callable[[Sequence[tuple[JudgeItem, JudgeItem]]], list[Verdict]]


@dataclass(frozen=True)
class PairOutcome:
    """One scheduled pair, compared in both orders."""

    first: JudgeItem
    second: JudgeItem
    verdicts: tuple[Verdict, Verdict]  # (first shown as A, second shown as A)

    @property
    def failed(self) -> bool:
        return any(v.choice is None for v in self.verdicts)

    @property
    def consistent(self) -> bool:
        """Both orders name the same winner (or both have no preference)."""
        as_a, as_b = self.verdicts
        return not self.failed and _FIRST_WINS[as_a.choice] == 1.0 - _FIRST_WINS[as_b.choice]

    @property
    def result(self) -> float | None:
        """For `first`: 1 win, 0 loss, 0.5 tie (orders disagree or no preference), None when failed."""
        if self.failed:
            return None
        return _FIRST_WINS[self.verdicts[0].choice] if self.consistent else 0.5


def schedule_pairs(
    n: int, schedule: Schedule = "round_robin", k: int = 2, rng: random.Random | None = None
) -> list[tuple[int, int]]:
    """Which pairs (i < j) among n samples are compared.

    round_robin: every pair, n(n-1)/2. cycle: each sample vs the next one,
    (i, i+1 mod n): n pairs (1 when n = 2), every sample plays twice and all
    are connected. random_k: each sample vs k others drawn at random (a pair
    drawn twice is played once), so every sample plays at least k times.
    """
    if n < 2:
        return []
    if schedule == "round_robin" or (schedule == "random_k" and k >= n - 1):
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    if schedule == "cycle":
        return sorted({tuple(sorted((i, (i + 1) % n))) for i in range(n)})
    if schedule == "random_k":
        rng = rng or random.Random(0)
        pairs = {tuple(sorted((i, j))) for i in range(n) for j in rng.sample([o for o in range(n) if o != i], k)}
        return sorted(pairs)
    raise ValueError(f"unknown schedule {schedule!r}")


def bradley_terry(
    n: int, games: Sequence[tuple[int, int, float]], tol: float = 1e-10, max_iter: int = 10_000
) -> list[float]:
    """Log-strengths of n players from games (i, j, result for i: 1 win, 0.5 tie, 0 loss).

    Minorize-maximize updates (Hunter 2004, "MM algorithms for generalized
    Bradley-Terry models"), a tie counting half a win to each side. Every
    player also plays PRIOR_GAMES virtual tied games against a fixed reference
    of strength 1: the estimate stays finite when a player wins or loses every
    game (the plain maximum-likelihood one diverges) and the scale is anchored.
    """
    wins = [PRIOR_GAMES / 2] * n
    for i, j, r in games:
        wins[i] += r
        wins[j] += 1.0 - r
    strength = [1.0] * n
    for _ in range(max_iter):
        denom = [PRIOR_GAMES / (s + 1.0) for s in strength]
        for i, j, _ in games:
            d = 1.0 / (strength[i] + strength[j])
            denom[i] += d
            denom[j] += d
        new = [w / d for w, d in zip(wins, denom)]
        change = max(abs(math.log(a / b)) for a, b in zip(new, strength))
        strength = new
        if change < tol:
            break
    return [math.log(s) for s in strength]


def _group_scores(
    n: int, games: list[tuple[int, int, float]], aggregate: Aggregate
) -> tuple[list[float | None], list[dict]]:
    """Per-sample 0-10 scores (None for a sample with no result) and their figures for `raw`."""
    tally = [{"pairs": 0, "wins": 0, "ties": 0, "losses": 0} for _ in range(n)]
    for i, j, r in games:
        for who, res in ((i, r), (j, 1.0 - r)):
            tally[who]["pairs"] += 1
            tally[who]["wins" if res == 1.0 else "losses" if res == 0.0 else "ties"] += 1
    played = [t["pairs"] > 0 for t in tally]
    scores: list[float | None] = [None] * n
    for i, t in enumerate(tally):
        if played[i]:
            t["win_rate"] = (t["wins"] + t["ties"] / 2) / t["pairs"]
            scores[i] = 10.0 * t["win_rate"]
    if aggregate == "bradley_terry" and any(played):
        theta = bradley_terry(n, games)
        mean = sum(t for t, p in zip(theta, played) if p) / sum(played)
        for i in range(n):
            if played[i]:
                tally[i]["strength"] = round(theta[i] - mean, 6)
                scores[i] = 10.0 / (1.0 + math.exp(mean - theta[i]))
    return scores, tally


def _rationale(outcomes: Sequence[PairOutcome]) -> str:
    """The judge's explanations from the comparisons of one sample, labelled by who was A and B."""
    lines = []
    for o in outcomes:
        for (a, b), v in zip(((o.first, o.second), (o.second, o.first)), o.verdicts):
            if v.rationale:
                lines.append(f"[A={a.sample_id} B={b.sample_id}] {v.rationale}")
    return "\n".join(lines)


def run_tournament(
    items: Sequence[JudgeItem],
    compare: Compare,
    judge_name: str,
    schedule: Schedule = "round_robin",
    k: int = 2,
    aggregate: Aggregate = "bradley_terry",
    seed: int = 0,
) -> JudgeResult:
    """Group items by prompt, compare the scheduled pairs in both orders, score every sample.

    All comparisons of all prompts go to `compare` in one call (one batch for
    the engine). Returns one Judgment per item in order, every pair's outcome
    (`PairOutcome`s, in schedule order) and the figures of `tournament_stats`;
    a figure with nothing to measure (e.g. no pair had both orders succeed) is left out.
    """
    groups: dict[str, list[int]] = {}
    for idx, item in enumerate(items):
        groups.setdefault(item.prompt.id, []).append(idx)
    scheduled: list[tuple[JudgeItem, JudgeItem]] = []
    for prompt_id, members in groups.items():
        rng = random.Random(f"{seed}:{prompt_id}")  # same pairing for a prompt on every run and resume
        scheduled += [(items[members[i]], items[members[j]]) for i, j in schedule_pairs(len(members), schedule, k, rng)]
    ordered = [pair for x, y in scheduled for pair in ((x, y), (y, x))]
    verdicts = compare(ordered) if ordered else []
    if len(verdicts) != len(ordered):
        raise RuntimeError(f"{judge_name}: {len(verdicts)} verdicts for {len(ordered)} comparisons")
    outcomes = [PairOutcome(x, y, (verdicts[2 * p], verdicts[2 * p + 1])) for p, (x, y) in enumerate(scheduled)]

    judgments: list[Judgment | None] = [None] * len(items)
    by_prompt: dict[str, list[PairOutcome]] = {}
    for o in outcomes:
        by_prompt.setdefault(o.first.prompt.id, []).append(o)
    for prompt_id, members in groups.items():
        if len(members) < 2:
            error = f"{judge_name} needs >= 2 samples of the same prompt (got 1)"
            judgments[members[0]] = Judgment(items[members[0]].sample_id, judge_name, None, error=error)
            continue
        local = {items[m].sample_id: n for n, m in enumerate(members)}
        mine = by_prompt.get(prompt_id, [])
        games = [(local[o.first.sample_id], local[o.second.sample_id], o.result) for o in mine if not o.failed]
        scores, tally = _group_scores(len(members), games, aggregate)
        for n, m in enumerate(members):
            item = items[m]
            played = [o for o in mine if item.sample_id in (o.first.sample_id, o.second.sample_id)]
            tally[n]["failed"] = sum(o.failed for o in played)
            error = None
            if scores[n] is None:
                errors = [v.error for o in played for v in o.verdicts if v.error]
                error = "every comparison of this sample failed" + (f": {errors[0]}" if errors else "")
            raw = json.dumps({"aggregate": aggregate, **tally[n]})
            rationale = _rationale(played)
            judgments[m] = Judgment(item.sample_id, judge_name, scores[n], rationale=rationale, raw=raw, error=error)
    return JudgeResult([j for j in judgments if j is not None], tournament_stats(outcomes), tuple(outcomes))


def tournament_stats(outcomes: Sequence[PairOutcome]) -> dict[str, float]:
    """position_consistency, tie_rate, a_preference (position bias), comparison_failure_rate, pairs."""
    stats: dict[str, float] = {"pairs": float(len(outcomes))}
    done = [o for o in outcomes if not o.failed]
    verdicts = [v for o in outcomes for v in o.verdicts]
    decisive = [v for v in verdicts if v.choice in ("A", "B")]
    if verdicts:
        stats["comparison_failure_rate"] = sum(v.choice is None for v in verdicts) / len(verdicts)
    if done:
        stats["position_consistency"] = sum(o.consistent for o in done) / len(done)
        stats["tie_rate"] = sum(o.result == 0.5 for o in done) / len(done)
    if decisive:
        stats["a_preference"] = sum(v.choice == "A" for v in decisive) / len(decisive)
    return stats
