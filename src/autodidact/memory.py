"""This process's resident memory, for the peak the runner records per stage.

Linux only (it reads /proc/self/status and resets the peak through
/proc/self/clear_refs); elsewhere the figures are None and nothing is recorded.
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def rss_mib() -> tuple[float, float] | None:
    """(current, peak since the last `reset_peak_rss`) resident memory in MiB, or None off Linux."""
    try:
        fields = dict(line.split(":", 1) for line in _STATUS.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def reset_peak_rss() -> bool:
    """Reset the peak (VmHWM) to the current resident memory; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False
