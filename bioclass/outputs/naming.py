"""Where per-recording outputs go: one file per recording, in a folder that mirrors the
recordings' folders, so that recordings with the same name in different folders never collide."""

from __future__ import annotations

import os
from pathlib import Path


def per_recording_paths(folder: Path, files: list[Path], suffix: str) -> dict[Path, Path]:
    """One output per recording: `folder/<relative folder>/<stem><suffix>`.

    Sub-folders mirror the recordings' folders below their common parent (`site_a/rec.wav` and
    `site_b/rec.wav` -> `site_a/rec<suffix>`, `site_b/rec<suffix>`); two recordings with the
    same stem in one folder (`rec.wav`, `rec.flac`) keep their whole names (`rec.wav<suffix>`).
    """
    if not files:
        return {}
    resolved = [Path(f).resolve() for f in files]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    stems: dict[Path, int] = {}
    for p in resolved:
        key = p.parent / p.stem
        stems[key] = stems.get(key, 0) + 1
    out = {}
    for original, p in zip(files, resolved, strict=True):
        name = p.stem if stems[p.parent / p.stem] == 1 else p.name
        out[Path(original)] = folder / p.parent.relative_to(common) / f"{name}{suffix}"
    return out
