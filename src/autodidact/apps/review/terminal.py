"""Rate the review queue in a terminal, without a browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from autodidact.apps.review.rundir import open_store
from autodidact.records import Rating, ReviewItem
from autodidact.review.agreement import PAIR_LABELS, check_rating, update_agreement
from autodidact.store import RunStore

_PAIR_KEYS = {"1": 1.0, "2": 0.0, "t": 0.5}


def _show(console: Console, store: RunStore, item: ReviewItem, position: str) -> None:
    # Text(), not a str: generated text may contain [markup] that rich would otherwise interpret.
    prompt = store.prompt(item.prompt_id)
    console.rule(escape(f"item {item.id} ({position}, task {prompt.task})"))
    for message in prompt.messages:
        console.print(Panel(Text(message["content"]), title=message["role"], title_align="left"))
    if item.kind == "score":
        console.print(Panel(Text(store.sample(item.sample_id).text), title="response", title_align="left"))
    else:
        console.print(Panel(Text(store.sample(item.sample_id).text), title="first", title_align="left"))
        console.print(Panel(Text(store.sample(item.other_sample_id).text), title="second", title_align="left"))


def _parse(item: ReviewItem, answer: str) -> float:
    """The rating a typed answer means; ValueError if it means none."""
    if item.kind == "pair":
        if answer not in _PAIR_KEYS:
            raise ValueError("type 1 (first is better), 2 (second is better) or t (tie)")
        return _PAIR_KEYS[answer]
    try:
        return check_rating(item, float(answer))
    except ValueError:
        raise ValueError("type a score from 0 to 10") from None


def review_in_terminal(
    run_dir: Path, console: Console | None = None, input_fn: Callable[[str], str] = input, min_ratings: int = 5
) -> int:
    """Show each pending item and ask for a rating: 0-10, or 1 / 2 / t for a pair; s skips, q quits.

    Each rating is stored (source 'terminal') with its checkpoint's agreement as soon as it is typed,
    so quitting loses nothing. Returns the number of ratings stored.
    """
    console = console or Console()
    stored = 0
    with open_store(run_dir) as store:
        pending = store.review_items(pending=True)
        if not pending:
            console.print("Nothing to rate: every review item has a rating.")
            return 0
        for k, item in enumerate(pending, start=1):
            _show(console, store, item, f"{k} of {len(pending)}")
            question = "score 0-10" if item.kind == "score" else "better: 1 first, 2 second, t tie"
            while True:
                try:
                    answer = input_fn(f"{question} (s skip, q quit): ").strip().lower()
                except EOFError:
                    answer = "q"
                if answer in ("s", "q"):
                    break
                try:
                    value = _parse(item, answer)
                except ValueError as exc:
                    console.print(f"[red]{exc}[/red]")
                    continue
                with store.transaction():
                    store.rate(Rating(item_id=item.id, value=value, source="terminal"))
                    figures = update_agreement(store, item.iteration, min_ratings)
                stored += 1
                # The judge's view only now, after the person has committed to theirs.
                if item.kind == "score":
                    console.print(f"stored; the judge gave {item.judge_score:g}.")
                else:
                    console.print(f"stored; the judge preferred {PAIR_LABELS[item.judge_preference]}.")
                agreed = figures["human_agreement"]
                console.print(f"checkpoint {item.iteration}: agreement "
                              f"{'not yet counted' if agreed is None else f'{agreed:.3f}'}")
                break
            if answer == "q":
                break
    console.print(f"{stored} rating(s) stored.")
    return stored
