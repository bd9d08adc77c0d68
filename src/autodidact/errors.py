"""User-facing errors.

Anything a user can fix (a config field, a path, a name) raises
`AutodidactError` with a one-line message that names the problem and the fix.
The CLI prints it without a traceback and exits with code 2.
"""

from __future__ import annotations

import difflib
import errno
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


# errno values that mean "no room": a full disk, a quota, a file-size limit (RLIMIT_FSIZE).
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def file_error(exc: OSError, fix: str, path: object = None) -> AutodidactError:
    """A failed file or folder operation as one line: the path, what went wrong, and `fix` (what to do instead).

    `path` is what was being written: named for a full disk (a write to an open file has no `filename`, and
    a copy names its source), and where the exception names no file.
    """
    where = exc.filename if exc.filename is not None else path
    if exc.errno in _FULL:
        return AutodidactError(f"disk full while writing {path or where}; free space or {fix}.")
    if exc.errno in _DENIED:
        return AutodidactError(f"cannot write to {where} (read-only or permission denied); {fix}.")
    if exc.errno == errno.ENOTDIR:
        return AutodidactError(f"{where}: a file is in the way where a folder is expected; {fix}.")
    if exc.errno == errno.EISDIR:
        return AutodidactError(f"{where} is a folder, not a file; {fix}.")
    return AutodidactError(f"{where}: {exc.strerror or exc}; {fix}." if where is not None else f"{exc}; {fix}.")
