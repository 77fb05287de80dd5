"""Per-file scan results kept atomically on disk, so an interrupted scan resumes exactly.

Each file's result (window scores of every stream, or its failure) is written to
`<parts>/<key>.npz` (or `.failed.json`) by write-then-rename. The key hashes the file's path,
size and modification time and every parameter that changes scores (models, hop, channels,
inference mode, precision): a re-run with the same command finds the part and skips the file;
a changed file or parameter makes a new key. Thresholds and event options are applied later
from the stored scores, so changing them re-uses every part.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bioclass.core.atomic import atomic_file, atomic_write_bytes
from bioclass.inference.score import FileScores, StreamScores


def file_key(path: Path, params: dict[str, Any]) -> str:
    """Stable key of (file identity, score-affecting parameters)."""
    stat = path.stat()
    identity = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
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


def save_failure(parts: Path, key: str, path: Path, error: str) -> None:
    """Store that a file could not be scanned (so a resumed run reports it without retrying)."""
    text = json.dumps({"file": str(path), "error": error}).encode()
    atomic_write_bytes(parts / f"{key}.failed.json", text)


def load_part(parts: Path, key: str) -> FileScores | str | None:
    """The stored scores, the stored error message, or None when the file is not done yet.

    A part that cannot be read (e.g. a disk error after the rename) counts as not done.
    """
    done = parts / f"{key}.npz"
    if done.is_file():
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
    failed = parts / f"{key}.failed.json"
    if failed.is_file():
        return json.loads(failed.read_text(encoding="utf-8"))["error"]
    return None
