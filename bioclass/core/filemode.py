"""The mode a new output file gets: what the user's umask gives any new file.

`tempfile.mkstemp`, which the atomic writer needs for a safe temporary name, makes its files
readable by their owner only (0600); renamed into place, checkpoints and tables would stay so,
and colleagues on a shared server could not read them.
"""

from __future__ import annotations

import os

_STATUS = "/proc/self/status"


def _umask_from_proc() -> int | None:
    """The umask as Linux reports it (since 4.7), read without changing it."""
    try:
        with open(_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _umask_by_setting() -> int:
    # os.umask can only be read by setting it, which races with threads creating files in
    # between: done once, at import, where /proc cannot tell.
    current = os.umask(0o022)
    os.umask(current)
    return current


_PROC_AT_IMPORT = _umask_from_proc()
_FROM_PROC = _PROC_AT_IMPORT is not None
_AT_IMPORT = _PROC_AT_IMPORT if _PROC_AT_IMPORT is not None else _umask_by_setting()


def current_umask() -> int:
    """The process's umask now (or, without /proc, as it was when bioclass was imported)."""
    if _FROM_PROC:
        umask = _umask_from_proc()
        if umask is not None:
            return umask
    return _AT_IMPORT


def new_file_mode() -> int:
    """Permission bits of a new file under the current umask (0644 under the usual 022)."""
    return 0o666 & ~current_umask()
