"""When to stop: max iterations, or no real held-out gain for `patience` iterations."""

from __future__ import annotations

from collections.abc import Sequence


def best_iteration(history: Sequence[float | None]) -> int:
    """The iteration with the highest held-out metric (earliest on ties; 0 is the base model)."""
    valid = [(value, -i) for i, value in enumerate(history) if value is not None]
    return -max(valid)[1] if valid else 0


def stop_reason(history: Sequence[float | None], max_iterations: int, patience: int, min_delta: float) -> str | None:
    """Why the loop should stop after the last entry of `history`, or None to go on.

    `history[i]` is the held-out metric after iteration i (0 = base model). An
    iteration counts as improvement only when it beats the best so far by at
    least `min_delta`.
    """
    last = len(history) - 1
    best = history[0] if history[0] is not None else float("-inf")
    stale = 0
    for value in history[1:]:
        if value is not None and value >= best + min_delta:
            best, stale = value, 0
        else:
            stale += 1  # like Keras' EarlyStopping, small gains do not move the bar
    if stale >= patience and last > 0:
        return f"no gain of {min_delta:g} or more in the held-out metric for {stale} iteration(s)"
    if last >= max_iterations:
        return f"reached max_iterations={max_iterations}"
    return None
