"""Find byte-identical audio files: they leak between training and validation splits."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path


def file_digest(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """BLAKE2b digest of a file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def find_duplicates(paths: Iterable[str]) -> list[list[str]]:
    """Groups (of 2 or more) of distinct paths whose files have the same bytes.

    Files are first bucketed by size so only same-size files are hashed. A file that cannot be
    read (a link loop, no permission) is left out here: decoding lists it with its reason.
    """
    by_size: dict[int, list[str]] = defaultdict(list)
    for p in dict.fromkeys(paths):
        try:
            by_size[Path(p).stat().st_size].append(p)
        except OSError:
            continue
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_hash: dict[str, list[str]] = defaultdict(list)
        for p in same_size:
            try:
                by_hash[file_digest(p)].append(p)
            except OSError:
                continue
        groups += [sorted(g) for g in by_hash.values() if len(g) > 1]
    return sorted(groups)
