"""Pairs of overlapping time intervals, found group by group (a group: one recording, or one
recording and label) without comparing every interval with every other.

The building block of event matching, window labelling and extent checks: each needs the
intervals of one table that overlap those of another, and tables of a season hold tens of
thousands of rows, so an all-pairs comparison would be quadratic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def overlapping_pairs(
    a_start: np.ndarray,
    a_end: np.ndarray,
    a_group: np.ndarray,
    b_start: np.ndarray,
    b_end: np.ndarray,
    b_group: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j) of an `a` interval and a `b` interval of the same group that overlap.

    Intervals that only touch (one ends where the other starts) do not overlap.

    Args:
        a_start, a_end, a_group: the first table's intervals (seconds) and integer group codes.
        b_start, b_end, b_group: the second table's.

    Returns:
        (i, j, overlap): row indices into `a` and `b` and the overlap in seconds (> 0), sorted
        by i, then by b's start time.
    """
    a_start, a_end = np.asarray(a_start, float), np.asarray(a_end, float)
    b_start, b_end = np.asarray(b_start, float), np.asarray(b_end, float)
    a_group, b_group = np.asarray(a_group), np.asarray(b_group)
    out_i, out_j = [], []
    b_by_group = _group_slices(b_group)
    for group, a_rows in _group_slices(a_group).items():
        b_rows = b_by_group.get(group)
        if b_rows is None:
            continue
        b_rows = b_rows[np.argsort(b_start[b_rows], kind="mergesort")]
        starts = b_start[b_rows]
        # Running maximum of the ends in start order: every b before the first index whose
        # running end passes a's start ends before a starts, so the candidates of an `a` are
        # one contiguous range [lo, hi) of the sorted b's.
        reach = np.maximum.accumulate(b_end[b_rows])
        hi = np.searchsorted(starts, a_end[a_rows], side="left")
        lo = np.searchsorted(reach, a_start[a_rows], side="right")
        counts = np.maximum(hi - lo, 0)
        total = int(counts.sum())
        if total == 0:
            continue
        first = np.cumsum(counts) - counts
        within = np.arange(total) - np.repeat(first, counts)
        out_i.append(np.repeat(a_rows, counts))
        out_j.append(b_rows[np.repeat(lo, counts) + within])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    overlap = np.minimum(a_end[i], b_end[j]) - np.maximum(a_start[i], b_start[j])
    keep = overlap > 0
    i, j, overlap = i[keep], j[keep], overlap[keep]
    order = np.argsort(i, kind="mergesort")
    return i[order], j[order], overlap[order]


def _group_slices(groups: np.ndarray) -> dict:
    """Group code -> the row indices of that group, in row order."""
    if len(groups) == 0:
        return {}
    order = np.argsort(groups, kind="mergesort")
    values, first = np.unique(groups[order], return_index=True)
    return dict(zip(values.tolist(), np.split(order, first[1:]), strict=True))


def shared_codes(*tables: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Integer codes of the rows' keys, shared across tables: rows with equal keys, in any of
    the tables, get equal codes.

    Each argument is one table's key columns (the same number for every table), e.g.
    `shared_codes((det_files, det_labels), (box_files, box_labels))`.
    """
    codes: dict[tuple, int] = {}
    out = []
    for columns in tables:
        n = len(columns[0])
        keys = zip(*(np.asarray(c, dtype=object) for c in columns), strict=True)
        out.append(np.fromiter((codes.setdefault(k, len(codes)) for k in keys), np.int64, n))
    return tuple(out)


def contained(
    a_start: np.ndarray,
    a_end: np.ndarray,
    a_group: np.ndarray,
    b_start: np.ndarray,
    b_end: np.ndarray,
    b_group: np.ndarray,
    tolerance_s: float = 1e-3,
) -> np.ndarray:
    """(len(a),) whether each `a` interval lies inside one `b` interval of its group.

    The `b` intervals must not overlap one another (merged stretches), so an `a` inside one of
    them overlaps it by its whole length. `tolerance_s` absorbs times rounded in tables.
    """
    a_start, a_end = np.asarray(a_start, float), np.asarray(a_end, float)
    inside = np.zeros(len(a_start), dtype=bool)
    # Widened by the tolerance, so a zero-length `a` (a point) still overlaps its stretch.
    i, _, overlap = overlapping_pairs(
        a_start - tolerance_s, a_end + tolerance_s, a_group, b_start, b_end, b_group
    )
    inside[i[overlap >= (a_end[i] - a_start[i]) - tolerance_s]] = True
    return inside
