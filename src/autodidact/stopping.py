"""When to stop (max iterations, or no real held-out gain for `patience` iterations), which iteration is
best, and the words for a run's outcome, the same in the run summary, `report`, `export` and `chat`:

- **base**: the model the run started from, iteration 0. It has no checkpoint.
- **best**: the evaluated iteration with the highest held-out pass rate; it may be the base model.
- **last**: the highest iteration with a trained checkpoint, whether or not it is better.
- **improved**: said of a checkpoint only when it is the best iteration and that is not the base model,
  i.e. it beat the base model on held-out prompts. A checkpoint that did not is named by its
  iteration alone.
"""

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


BASE_MODEL = "the base model"


def best_phrase(best_iteration: int | None, trained: int) -> str:
    """What the run's best iteration is, in words; `trained` counts the iterations with a checkpoint."""
    if best_iteration is None:
        return "not known yet (no iteration evaluated)"
    if best_iteration > 0:
        return f"iteration {best_iteration} (improved on {BASE_MODEL})"
    if trained:
        return f"iteration 0, {BASE_MODEL} (no trained iteration beat it on held-out prompts)"
    return f"iteration 0, {BASE_MODEL} (nothing trained yet)"


def checkpoint_label(iteration: int | None, best_iteration: int | None) -> str:
    """A trained checkpoint's name for tables and prompts: 'improved (iter 2)' only when it is the best."""
    if iteration is None:
        return "checkpoint"
    if best_iteration is not None and iteration == best_iteration and iteration > 0:
        return f"improved (iter {iteration})"
    if best_iteration == 0:
        return f"iter {iteration} (not better than {BASE_MODEL})"
    return f"iter {iteration}"
