"""Per-file scan results kept atomically on disk, so an interrupted scan resumes exactly.

Each scanned file's result (window scores of every stream) is written to `<parts>/<key>.npz` by
write-then-rename. The key hashes the file's path, size, modification time and a content
fingerprint (`fingerprint`), and every parameter that changes scores (models, hop, channels,
inference mode, precision): a re-run with the same command finds the part and skips the file; a
changed file or parameter makes a new key. Thresholds and event options are applied later from
the stored scores, so changing them re-uses every part.

A file that could not be scanned is not stored: a re-run tries it again (it may have been fixed).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bioclass.core.atomic import atomic_file
from bioclass.inference.score import FileScores, StreamScores

# The fingerprint reads BLOCK bytes at BLOCKS evenly spaced offsets, the first and the last
# included (a file up to BLOCKS * BLOCK bytes is read whole): a replaced recording differs from
# the first block on, while an hour of audio costs a few reads instead of hundreds of MB.
BLOCK = 64 * 1024
BLOCKS = 6


def fingerprint(fd: int, size: int) -> str:
    """Hash of `size` and the sampled blocks of the open file `fd` (see BLOCK, BLOCKS)."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    if size <= BLOCK * BLOCKS:
        offsets = range(0, size, BLOCK)
    else:
        offsets = [i * (size - BLOCK) // (BLOCKS - 1) for i in range(BLOCKS)]
    for offset in offsets:
        digest.update(os.pread(fd, BLOCK, offset))
    return digest.hexdigest()


def file_key(path: Path, params: dict[str, Any]) -> str:
    """Stable key of (file identity and sampled content, score-affecting parameters).

    Raises:
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        stat = os.fstat(fd)
        identity = {
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "content": fingerprint(fd, stat.st_size),
        }
    finally:
        os.close(fd)
    blob = json.dumps({"file": identity, "params": params}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def save_result(parts: Path, key: str, result: FileScores) -> None:
    """Store a scanned file's streams (and any damage note) as one .npz part."""
    arrays: dict[str, np.ndarray] = {
        "n_streams": np.array(len(result.streams)),
        "note": np.array(result.note or ""),
    }
    for i, s in enumerate(result.streams):
        arrays[f"channel_{i}"] = np.array(-1 if s.channel is None else s.channel)
        arrays[f"starts_{i}"] = s.starts_s
        arrays[f"ends_{i}"] = s.ends_s
        arrays[f"scores_{i}"] = s.scores
        arrays[f"duration_{i}"] = np.array(s.duration_s)
    with atomic_file(parts / f"{key}.npz", binary=True) as f:
        np.savez(f, **arrays)


def load_part(parts: Path, key: str) -> FileScores | None:
    """The stored scores, or None when the file is not done yet.

    A part that cannot be read (e.g. a disk error after the rename) counts as not done.
    """
    done = parts / f"{key}.npz"
    if not done.is_file():
        return None
    try:
        with np.load(done) as z:
            streams = [
                StreamScores(
                    channel=None if int(z[f"channel_{i}"]) < 0 else int(z[f"channel_{i}"]),
                    starts_s=z[f"starts_{i}"],
                    ends_s=z[f"ends_{i}"],
                    scores=z[f"scores_{i}"],
                    duration_s=float(z[f"duration_{i}"]),
                )
                for i in range(int(z["n_streams"]))
            ]
            return FileScores(streams, str(z["note"]) or None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        done.unlink(missing_ok=True)
        return None
