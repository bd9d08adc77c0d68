"""Diminishing returns: how much each iteration adds, and whether that is shrinking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def gains(history: Sequence[float | None]) -> list[float | None]:
    """Held-out metric gain of each iteration over the previous one (None at 0 or where a value is missing)."""
    out: list[float | None] = [None]
    for before, after in zip(history[:-1], history[1:]):
        out.append(None if before is None or after is None else after - before)
    return out


def gain_trend(history: Sequence[float | None], window: int) -> float | None:
    """Slope (per iteration) of the last `window` gains, by least squares; None with fewer than 2 gains."""
    recent = [(i, g) for i, g in enumerate(gains(history)) if g is not None][-window:]
    if len(recent) < 2:
        return None
    x, y = zip(*recent)
    return float(np.polyfit(x, y, 1)[0])


def returns_alert(history: Sequence[Mapping[str, float | None]], min_delta: float) -> str | None:
    """An alert when the gains are shrinking and the last one is below `min_delta`."""
    trend = history[-1].get("gain_trend") if history else None
    last = history[-1].get("gain") if history else None
    if trend is None or last is None or trend >= 0 or last >= min_delta:
        return None
    shown = ", ".join(f"{100 * m['gain']:+.1f}" for m in history if m.get("gain") is not None)
    return (
        f"gains per iteration are shrinking ({shown} points of the held-out metric; trend {100 * trend:+.1f} "
        f"points per iteration) and the last is below stopping.min_delta ({100 * min_delta:g} points): "
        "further iterations are unlikely to pay."
    )
