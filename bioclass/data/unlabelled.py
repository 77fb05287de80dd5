"""Unlabelled clips for semi-supervised training: windows cut from folders of field audio, and
training clips whose labels are withheld (few-label experiments)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bioclass.audio.probe import join_bad, probe_headers, probe_samples
from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)


def unlabelled_windows(
    inputs: list[str], clip_seconds: float, channel: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut every file below `inputs` into non-overlapping clip-length windows.

    Only headers are read here, and the samples of float files (the only ones that can hold
    NaN/Inf); windows are decoded on demand (seekable excerpts), so an archive of any size costs
    a table row per window, not its audio in memory.

    Returns:
        (windows: file, start_time, end_time, group, split='train', label=None;
         bad: file, error, kept for files whose header cannot be read or whose every sample is
         NaN/Inf (left out), and files with some NaN/Inf samples (kept, those set to 0))
    """
    from bioclass.audio.discover import collect_inputs

    files = collect_inputs(inputs)
    rows = []
    readable, unreadable = probe_headers(files)
    readable, damaged = probe_samples(readable, channel)
    bad = join_bad(unreadable, damaged)
    for path, info in readable.items():
        n = max(1, int(info.duration_seconds // clip_seconds))
        starts = np.arange(n) * clip_seconds
        for start in starts:
            end = min(start + clip_seconds, info.duration_seconds)
            rows.append((path, float(start), float(end)))
    if not rows:
        raise BioclassError(f"data.unlabelled: no readable audio in {', '.join(inputs)}")
    table = pd.DataFrame(rows, columns=["file", "start_time", "end_time"])
    table["group"] = table["file"]
    table["split"] = "train"
    table["label"] = None
    return table, bad


def withhold_labels(
    table: pd.DataFrame, per_class: int | None, fraction: float, seed: int
) -> np.ndarray:
    """Which training rows keep their label: at most `per_class` and `fraction` of each class.

    Chosen at random (seeded) within each class, at least one clip per class.

    Returns:
        (n,) bool mask over `table`'s rows.
    """
    rng = np.random.default_rng([seed, 11])
    keep = np.zeros(len(table), dtype=bool)
    labels = table["label"].to_numpy()
    for label in sorted(set(labels)):
        members = np.flatnonzero(labels == label)
        n = max(1, int(round(len(members) * fraction)))
        if per_class is not None:
            n = min(n, per_class)
        keep[rng.choice(members, size=min(n, len(members)), replace=False)] = True
    return keep


def mark_unlabelled(table: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """A copy of `table` whose rows outside `keep` have no label (their true label is kept in
    `withheld_label` for reporting)."""
    out = table.copy()
    out["withheld_label"] = np.where(keep, None, out["label"].to_numpy())
    out.loc[~keep, "label"] = None
    return out
