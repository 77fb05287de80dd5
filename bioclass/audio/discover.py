"""Finding audio: files, folders (recursive), glob patterns and list files, in the order given."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from bioclass.audio.io import AUDIO_EXTENSIONS
from bioclass.audio.walk import Walk, match_parts, walk
from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)


def find_audio_files(folder: Path) -> list[Path]:
    """All audio files below `folder` (recursive, extensions matched case-insensitively).

    Links to folders are followed (once each); a link that loops back up the tree and a folder
    that cannot be listed are reported as warnings. Links named like audio that lead nowhere are
    kept, so that the command reading them reports them instead of losing them silently.
    """
    return sorted(
        p
        for p in _walk_reporting(folder).files
        # Hidden files include macOS "._x.wav" resource forks, which are not audio.
        if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")
    )


def _walk_reporting(folder: Path) -> Walk:
    found = walk(folder)
    for link, target in found.loops:
        log.warning("%s: symlink loop (leads back to %s), not followed", link, target)
    for path, reason in found.unreadable:
        log.warning("%s: cannot list this folder (%s); its files are left out", path, reason)
    return found


def expand_pattern(pattern: str) -> list[Path]:
    """The paths a glob pattern matches, sorted; `**` (a whole component) recurses, following
    links to folders once each (`glob`'s own `**` follows a link loop 40 links deep: with two
    loops in one folder, 2**40 paths)."""
    parts = Path(pattern).parts
    if "**" not in parts:
        return [Path(m) for m in sorted(glob.glob(pattern))]
    cut = parts.index("**")
    head = str(Path(*parts[:cut])) if cut else "."
    bases = [Path(b) for b in sorted(glob.glob(head))] if glob.has_magic(head) else [Path(head)]
    matches = []
    for base in bases:
        if base.is_dir():
            matches += [
                p
                for p in _walk_reporting(base).files
                if match_parts(p.relative_to(base).parts, parts[cut:])
            ]
    return sorted(matches)


def _is_file_or_dead_link(path: Path) -> bool:
    return path.is_file() or (path.is_symlink() and not path.exists())


def _identity(path: Path) -> Path:
    """The real path of a file; a link that leads nowhere stays itself (named as the user sees
    it in reports, and a looping link cannot be resolved)."""
    return path.resolve() if path.exists() else Path(os.path.abspath(path))


def read_list_file(path: str | Path) -> list[str]:
    """Paths from a text file, one per line; blank lines and `#` comments are skipped.

    Relative paths are relative to the list file's folder, so a list travels with its data.
    """
    path = Path(path)
    if not path.is_file():
        raise BioclassError(f"list file not found: {path}")
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            entries.append(str(p if p.is_absolute() else path.parent / p))
    return entries


def collect_inputs(items: Sequence[str | Path], list_file: str | Path | None = None) -> list[Path]:
    """Expand the user's inputs into a de-duplicated, ordered list of files to scan.

    A folder contributes its audio files recursively (extensions in any case); a named file is
    taken as it is (if it is not audio, the scan reports it as failed); anything else is a glob
    pattern (`**` recurses). Order: inputs in the order given, each folder sorted.

    Raises:
        BioclassError: an input matches nothing, or nothing at all is left to scan.
    """
    entries = [str(i) for i in items] + (read_list_file(list_file) if list_file else [])
    if not entries:
        raise BioclassError("nothing to scan: give files, folders, glob patterns or --from-list")
    found: dict[Path, None] = {}
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            files = find_audio_files(path)
            if not files:
                raise BioclassError(f"{path}: no audio files in this folder")
        elif path.is_file():
            files = [path]
        else:
            files = [m for m in expand_pattern(str(path)) if _is_file_or_dead_link(m)]
            if not files:
                raise BioclassError(f"{entry}: no such file or folder, and no glob match")
        for f in files:
            found.setdefault(_identity(f), None)
    return list(found)
