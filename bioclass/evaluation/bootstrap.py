"""Confidence intervals by bootstrap over recordings.

Calls of one recording are not independent (one site, one night, one bird calling again and
again), so the unit resampled is the recording: each replicate draws as many recordings as there
are, with replacement, and a recording drawn k times counts k times. A metric that is a ratio of
counts (precision, recall, F1) then needs only the per-recording counts and one matrix product
per replicate block; ranking metrics take the same draws as window weights (see `ranking`).
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95  # two-sided coverage of the reported intervals


def recording_draws(n_recordings: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n_recordings) how often each recording is drawn in each replicate.

    Each row sums to `n_recordings`; the same seed gives the same draws.
    """
    rng = np.random.default_rng(seed)
    if replicates <= 0 or n_recordings == 0:
        return np.zeros((0, n_recordings), dtype=np.int64)
    return rng.multinomial(n_recordings, np.full(n_recordings, 1.0 / n_recordings), replicates)


def ratios(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 from counts (any shape; NaN where undefined).

    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN): the
    harmonic mean of the two where both exist, and 0 when there was something to find and
    nothing right was found.
    """
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
        }


def ratio_replicates(
    draws: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> dict[str, np.ndarray]:
    """Each replicate's precision, recall and F1 per class and pooled over classes.

    Args:
        draws: (B, R) from `recording_draws`.
        tp, fp, fn: (R, C) counts per recording and class.

    Returns:
        {metric: (B, C + 1)}: one column per class, the last pooled over all classes.
    """
    counts = [np.column_stack([x, x.sum(axis=1)]).astype(np.float64) for x in (tp, fp, fn)]
    tp_b, fp_b, fn_b = (draws @ x for x in counts)
    return ratios(tp_b, fp_b, fn_b)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column of `replicates` (B, ...).

    Replicates where the metric is undefined (NaN: no positive drawn, nothing detected) are left
    out; a column with no defined replicate gets NaN bounds.
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    tail = 100 * (1 - level) / 2
    shape = replicates.shape[1:]
    low, high = np.full(shape, np.nan), np.full(shape, np.nan)
    defined = ~np.isnan(replicates).all(axis=0) if len(replicates) else np.zeros(shape, bool)
    if defined.any():
        bounds = np.nanpercentile(replicates[:, defined], [tail, 100 - tail], axis=0)
        low[defined], high[defined] = bounds[0], bounds[1]
    return low, high


def ratio_columns(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, draws: np.ndarray, level: float = LEVEL
) -> dict[str, np.ndarray]:
    """Counts, precision, recall and F1 with their intervals, per class and pooled.

    Args:
        tp, fp, fn: (R, C) counts per recording and class.
        draws: (B, R) bootstrap draws; B = 0 gives NaN intervals.

    Returns:
        {column: (C + 1,)} for tp, fp, fn, precision, precision_low, precision_high, recall...,
        f1...; the last entry of each is pooled over the classes (micro average).
    """
    tp, fp, fn = (np.asarray(x, dtype=np.int64) for x in (tp, fp, fn))
    totals = [np.r_[x.sum(axis=0), x.sum()] for x in (tp, fp, fn)]
    columns: dict[str, np.ndarray] = dict(zip(("tp", "fp", "fn"), totals, strict=True))
    point = ratios(*totals)
    replicates = ratio_replicates(draws, tp, fp, fn) if len(draws) else None
    for name, value in point.items():
        columns[name] = value
        if replicates is None:
            low = high = np.full(len(value), np.nan)
        else:
            low, high = interval(replicates[name], level)
        columns[f"{name}_low"], columns[f"{name}_high"] = low, high
    return columns


def per_recording(
    recording: np.ndarray, cls: np.ndarray, mask: np.ndarray, n_recordings: int, n_classes: int
) -> np.ndarray:
    """(R, C) how many of the rows where `mask` holds fall in each recording and class."""
    flat = recording[mask] * n_classes + cls[mask]
    return np.bincount(flat, minlength=n_recordings * n_classes).reshape(n_recordings, n_classes)
