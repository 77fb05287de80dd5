"""Walking a folder tree safely: links to folders are followed once, loops are reported.

`Path.rglob` never follows a link to a folder (recordings linked in from another disk would be
left out without a word), and `glob("**", recursive=True)` follows links without limit (two
links back to a parent make it run for hours). This walk follows each real folder once, and a
link that leads back to a folder on the way down (or above the start) is noted, not entered.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Walk:
    """What a walk found.

    Attributes:
        files: every entry that is not a folder, in walk order: files, links to files, and links
            that lead nowhere (broken or looping), so whoever reads them can say why they fail.
        loops: (link, the folder it leads back to) for each link to a folder that was not
            entered because it leads back up the tree.
        unreadable: (folder, reason) for each folder that could not be listed.
    """

    files: list[Path] = field(default_factory=list)
    loops: list[tuple[Path, Path]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def walk(folder: Path) -> Walk:
    """Every non-folder entry below `folder`, following links to folders at most once each."""
    found = Walk()
    top = Path(os.path.realpath(folder))
    seen = {top}
    # Each pending folder carries the real folders above it: a link to one of those is a loop.
    pending: list[tuple[Path, tuple[Path, ...]]] = [(Path(folder), (top,))]
    while pending:
        current, chain = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            found.unreadable.append((current, exc.strerror or type(exc).__name__))
            continue
        below = []
        for entry in entries:
            path = Path(entry.path)
            if not _follows_to(entry, "dir"):
                if _follows_to(entry, "file") or entry.is_symlink():  # not sockets, FIFOs
                    found.files.append(path)
                continue
            real = Path(os.path.realpath(path))
            if real in chain or chain[-1].is_relative_to(real):
                found.loops.append((path, real))
            elif real not in seen:  # a second way into a folder already walked adds nothing
                seen.add(real)
                below.append((path, (*chain, real)))
        pending += reversed(below)  # popped last in, first out: sub-folders in name order
    return found


def _follows_to(entry: os.DirEntry[str], kind: str) -> bool:
    """Whether the entry, or what its link leads to, is a folder (`dir`) or a file (`file`);
    False for a link that leads nowhere (broken, or a loop, which `DirEntry` raises for)."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def match_parts(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether a relative path's components match a glob pattern's, as `glob` would.

    `**` matches zero or more folders; `*`, `?` and `[...]` match within one component; as in
    `glob`, a wildcard does not match a name that starts with a dot, and `**` does not enter
    hidden folders.
    """
    if not pattern:
        return not parts
    first, rest = pattern[0], pattern[1:]
    if first == "**":
        for i in range(len(parts) + 1):
            if match_parts(parts[i:], rest):
                return True
            if i < len(parts) and parts[i].startswith("."):
                return False
        return False
    if not parts or (parts[0].startswith(".") and not first.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], first) and match_parts(parts[1:], rest)
