"""Ranking metrics (average precision, ROC AUC) with weighted samples, many weightings at once.

A bootstrap over recordings draws each recording k times, which is each of its windows weighted
by k. Every replicate's AP and AUC come from one sort of the scores, and only the thresholds at
which a positive ranks count: AP gains only where recall grows, and AUC sums over positives.
Between two such thresholds the samples are pooled per recording into one segment, and each
replicate's counts per segment are one matrix product (draws x per-recording segment sums).
With positives a minority of the windows, that is a small fraction of the windows x replicates
a direct computation would touch. One row of ones gives the ordinary (unweighted) metric, so
the point estimate and its replicates come from the same code.
"""

from __future__ import annotations

import numpy as np

# Cells of any intermediate matrix handled at once: bounds memory at ~32 MB of float64.
_BLOCK_CELLS = 4_000_000


def weighted_average_precision(
    scores: np.ndarray,
    positive: np.ndarray,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Average precision under each row of weights.

    AP = sum_k (R_k - R_{k-1}) P_k over thresholds at each distinct score (ties share a rank),
    the definition of `metrics.average_precision`; a sample of weight w counts w times.

    Args:
        scores: (N,) scores.
        positive: (N,) bool.
        weights: (B, G) non-negative weights of the groups (a bootstrap's draws of
            recordings), or None for one row of ones.
        groups: (N,) the group of each sample (its recording); None: each sample is its own
            group (weights are then per sample, (B, N)).

    Returns:
        (B,) AP; NaN where the weighted positives sum to 0.
    """
    weights, group, y, s = _prepare(scores, positive, weights, groups, descending=True)
    if not len(s):
        return np.full(len(weights), np.nan)
    # Segment k: from after the (k-1)-th run holding a positive through the k-th; samples
    # ranked below the last positive never change AP.
    seg, n_seg, _ = _segments(s, y)
    keep = seg < n_seg
    n_pos = weights @ np.bincount(group, weights=y, minlength=weights.shape[1])
    ap = np.zeros(len(weights))
    tp_above = np.zeros(len(weights))
    n_above = np.zeros(len(weights))
    last_recall = np.zeros(len(weights))
    values = (y[keep], np.ones(int(keep.sum())))
    for tp, n_pred in _segment_sums(weights, group[keep], seg[keep], n_seg, values):
        tp = tp_above[:, None] + np.cumsum(tp, axis=1)
        n_pred = n_above[:, None] + np.cumsum(n_pred, axis=1)
        tp_above, n_above = tp[:, -1], n_pred[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(n_pred > 0, tp / np.where(n_pred > 0, n_pred, 1), 0.0)
            recall = tp / n_pos[:, None]
        gained = np.diff(recall, axis=1, prepend=last_recall[:, None])
        ap += np.sum(np.nan_to_num(gained) * precision, axis=1)
        last_recall = recall[:, -1]
    return np.where(n_pos > 0, ap, np.nan)


def weighted_roc_auc(
    scores: np.ndarray,
    positive: np.ndarray,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Area under the ROC curve under each row of weights.

    AUC = P(score of a positive > score of a negative) + 1/2 P(equal), the Mann-Whitney form,
    equal to the trapezoidal area under the ROC curve (ties give a diagonal step). Arguments as
    for `weighted_average_precision`.

    Returns:
        (B,) AUC; NaN where the weighted positives or negatives sum to 0.
    """
    weights, group, y, s = _prepare(scores, positive, weights, groups, descending=False)
    if not len(s):
        return np.full(len(weights), np.nan)
    n_groups = weights.shape[1]
    n_pos = weights @ np.bincount(group, weights=y, minlength=n_groups)
    n_neg = weights @ np.bincount(group, weights=1 - y, minlength=n_groups)
    # Segment k ends with the k-th run holding a positive (ascending scores): its negatives
    # tied with those positives count half, the ones before it count whole.
    seg, n_seg, in_positive_run = _segments(s, y)
    keep = seg < n_seg
    negative = 1 - y[keep]
    tied = in_positive_run[keep]
    values = (y[keep], negative * tied, negative * ~tied)
    wins = np.zeros(len(weights))
    below = np.zeros(len(weights))  # negative weight of the segments already passed
    for pos, neg_tied, neg_before in _segment_sums(weights, group[keep], seg[keep], n_seg, values):
        passed = np.cumsum(neg_tied + neg_before, axis=1) - neg_tied - neg_before
        under = below[:, None] + passed + neg_before
        wins += np.sum(pos * (under + 0.5 * neg_tied), axis=1)
        below += np.sum(neg_tied + neg_before, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def precision_recall_curve(
    scores: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at each distinct score, from the highest down."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y[order]
    if not len(s) or not y.any():
        return np.zeros(0), np.zeros(0), np.zeros(0)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    return tp / (last + 1), tp / y.sum(), s[last]


def _prepare(
    scores: np.ndarray,
    positive: np.ndarray,
    weights: np.ndarray | None,
    groups: np.ndarray | None,
    descending: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(B, G) weights, and the samples' groups, labels and scores in ranking order."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if weights is None:
        weights, group = np.ones((1, 1)), np.zeros(n, dtype=np.int64)
    else:
        weights = np.asarray(weights, dtype=np.float64)
        weights = weights.reshape(1, -1) if weights.ndim == 1 else weights
        group = np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)
    order = np.argsort(-scores if descending else scores, kind="mergesort")
    y = np.asarray(positive, dtype=np.float64)[order]
    return weights, group[order], y, scores[order]


def _segments(sorted_scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Each sorted sample's segment, the number of segments, and whether the sample's run of
    tied scores holds a positive. Segment k closes with the k-th run holding a positive;
    samples after the last one get segment n_seg."""
    run = np.r_[0, np.cumsum(np.diff(sorted_scores) != 0)]
    has_positive = np.bincount(run, weights=y) > 0
    closed = np.cumsum(has_positive)  # positive runs up to and including each run
    seg_of_run = closed - has_positive
    return seg_of_run[run], int(closed[-1]), has_positive[run]


def _segment_sums(weights, group, seg, n_seg, values):
    """Blocks of segments: per value, the (B, segments) weighted sums, in segment order."""
    n_rows, n_groups = weights.shape
    step = max(1, _BLOCK_CELLS // max(n_rows, n_groups))
    bounds = np.searchsorted(seg, np.arange(0, n_seg + step, step), side="left")
    for k, first in enumerate(range(0, n_seg, step)):
        width = min(step, n_seg - first)
        i0, i1 = int(bounds[k]), int(bounds[k + 1])
        flat = group[i0:i1] * width + (seg[i0:i1] - first)
        yield tuple(
            weights
            @ np.bincount(flat, weights=v[i0:i1], minlength=n_groups * width).reshape(
                n_groups, width
            )
            for v in values
        )
