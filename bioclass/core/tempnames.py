"""The names of the atomic writer's temporary files, and which of them a killed run left.

A temporary file is `.<target>.<host>-<pid>.<random>.tmp`: hidden, beside its target, naming
the machine and the process writing it. A run killed outright (SIGKILL, a power cut) cannot
delete its own, so the next run that writes in the folder removes the ones whose writer is
certainly gone: made on this host by a process that no longer exists. Files of another host (a
network folder) or of a live process (a scan running in parallel) are left alone, and so are
temporary files of other programs, which do not match the name.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".tmp"
# The target's name is shortened in its temporary's name, which must stay under the file
# system's 255-byte limit; the host and pid at the end are what identifies the writer.
_TARGET_CHARS = 100


def _host_tag() -> str:
    """This machine's short name in letters and digits ('.' and '-' separate the fields)."""
    short = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9]", "", short)[:32] or "host"


HOST = _host_tag()
# mkstemp's random part is made of lowercase letters, digits and '_'.
_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]+)\.[a-z0-9_]+\.tmp$")


def prefix(target_name: str, pid: int | None = None) -> str:
    """The start of a temporary file's name for `target_name`, written by `pid` (this one)."""
    writer = os.getpid() if pid is None else pid
    return f".{target_name[:_TARGET_CHARS]}.{HOST}-{writer}."


def beside(target: Path, tag: str) -> Path:
    """An intermediate file a writer makes on its way to `target` (`tag`: lowercase letters and
    digits), named as the atomic writer names its temporaries, so that the one a killed run
    left is found and removed like theirs."""
    return target.parent / f"{prefix(target.name)}{tag}{SUFFIX}"


def _alive(pid: int) -> bool:
    if pid <= 0 or os.name != "posix":
        # Only POSIX can ask about a process without touching it: on Windows os.kill(pid, 0)
        # terminates it. Pid 0 would address our own process group.
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: another user's process, alive
        return True
    return True


def writer_gone(name: str) -> bool:
    """Whether `name` is a temporary file of ours whose writer on this host has ended."""
    match = _NAME.match(name)
    return match is not None and match["host"] == HOST and not _alive(int(match["pid"]))


def _candidates(folder: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return [p for p in folder.iterdir() if p.name.endswith(SUFFIX)]
    found = []
    for root, _dirs, files in os.walk(folder):
        found += [Path(root) / name for name in files if name.endswith(SUFFIX)]
    return found


def remove_stale(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files in `folder` (and below, with `recursive`) that killed runs
    left; returns them. A folder that cannot be listed or cleaned is left as it is: whether
    anything can be written there is for the caller to find out."""
    try:
        stale = [p for p in _candidates(folder, recursive) if writer_gone(p.name)]
    except OSError:
        return []
    removed = []
    for path in stale:
        try:
            path.unlink()
        except OSError:  # gone already (another run cleaned it) or not ours to delete
            continue
        removed.append(path)
    if removed:
        log.info(
            "removed %d unfinished temporary file(s) of an earlier run that was killed, in %s",
            len(removed),
            folder,
        )
    return removed
