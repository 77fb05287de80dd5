"""Why a file cannot be read, in words a user can act on.

libsndfile reports a file it may not open as "System error.", which does not say what to fix;
opening the file ourselves first names the cause (permission denied, not found, a folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from bioclass.core.oserrors import os_error_reason


def unreadable_reason(path: str | Path) -> str | None:
    """None when `path` can be opened for reading, else why not."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return os_error_reason(exc)
    return None
