"""User-facing errors.

Anything a user can fix (a config field, a path, a name) raises
`AutodidactError` with a one-line message that names the problem and the fix.
The CLI prints it without a traceback and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutodidactError(Exception):
    """An error the user can fix; its message is one line naming the fix."""


def unknown_name(kind: str, name: str, known: Iterable[str], field: str | None = None) -> AutodidactError:
    """Build the error for a name that is not registered, suggesting close matches."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = f"{field}: " if field else ""
    # !r: a name holding a line break must not split the one-line error.
    return AutodidactError(f"{where}unknown {kind} {name!r}. Choose one of: {', '.join(known)}.{hint}")
