"""Plain words for the operating-system errors a user can fix (permissions, a read-only or
full disk, a quota, a missing file, a link loop), in one place for every message that names a
file that cannot be read or written."""

from __future__ import annotations

import errno

# errno.EDQUOT is missing where the platform has no quotas (Windows).
REASONS: dict[int, str] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "file not found",
    errno.EISDIR: "is a folder, not a file",
    errno.ELOOP: "too many symbolic links",
    errno.EIO: "input/output error (failing disk or network share?)",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    **({errno.EDQUOT: "disk quota exceeded"} if hasattr(errno, "EDQUOT") else {}),
}


def os_error_reason(exc: OSError) -> str:
    """Why `exc` happened, in plain words: the table above, else the system's own message."""
    return REASONS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
