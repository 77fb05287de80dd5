"""Finding audio: files, folders (recursive), glob patterns and list files, in the order given."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from bioclass.audio.io import AUDIO_EXTENSIONS
from bioclass.core.errors import BioclassError


def find_audio_files(folder: Path) -> list[Path]:
    """All audio files below `folder` (recursive, extensions matched case-insensitively)."""
    return sorted(
        p
        for p in folder.rglob("*")
        # Hidden files include macOS "._x.wav" resource forks, which are not audio.
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")
    )


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
            matches = sorted(glob.glob(str(path), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise BioclassError(f"{entry}: no such file or folder, and no glob match")
        for f in files:
            found.setdefault(f.resolve(), None)
    return list(found)
