"""Why a file cannot be read, in words a user can act on.

libsndfile reports a file it may not open as "System error.", which does not say what to fix;
opening the file ourselves first names the cause (permission denied, not found, a folder).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "file not found",
    errno.EISDIR: "is a folder, not a file",
    errno.ELOOP: "too many symbolic links",
    errno.EIO: "input/output error (failing disk or network share?)",
}


def os_error_reason(exc: OSError) -> str:
    """The cause of an OSError in a few words, e.g. 'permission denied'."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or type(exc).__name__).lower()


def unreadable_reason(path: str | Path) -> str | None:
    """None when `path` can be opened for reading, else why not."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return os_error_reason(exc)
    return None
