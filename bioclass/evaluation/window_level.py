"""Window-level metrics: every scored window of the annotated extent, labelled from the boxes.

A window is positive for a class when a box of that class covers enough of it (see
`label_windows`), negative when no box of that class touches it, and left out for that class
when a box only grazes it. Ranking metrics (AP, ROC AUC) use the class's raw scores; precision,
recall and F1 use the scan's decision rule (the window's top class, at or above its threshold),
so they describe the detections a scan would make.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bioclass.evaluation.bootstrap import interval, ratio_columns, ratios
from bioclass.evaluation.intervals import overlapping_pairs
from bioclass.evaluation.ranking import (
    precision_recall_curve,
    weighted_average_precision,
    weighted_roc_auc,
)

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
DEFAULT_OVERLAP_FRACTION = 0.5  # of the shorter of window and box
SWEEP = tuple(round(0.05 * k, 2) for k in range(21))  # 0.00, 0.05, ..., 1.00


def label_windows(
    win_group: np.ndarray,
    win_start: np.ndarray,
    win_end: np.ndarray,
    box_group: np.ndarray,
    box_start: np.ndarray,
    box_end: np.ndarray,
    box_class: np.ndarray,
    n_classes: int,
    min_overlap_s: float | None = None,
) -> np.ndarray:
    """(N, C) POSITIVE / NEGATIVE / IGNORED for each window and class.

    A window and a box of one recording (equal group codes) overlapping by `o` seconds make the
    window positive for the box's class when `o >= required`, where `required` is half the
    shorter of the two (default), or `min(min_overlap_s, window length, box length)` when
    `min_overlap_s` is given (so a box shorter than it still counts when the window holds it
    whole). A window a box overlaps by less is IGNORED for that class (neither a hit nor a
    false alarm: it holds a sliver of a call); positive wins over ignored.
    """
    labels = np.zeros((len(win_start), n_classes), dtype=np.int8)
    i, j, overlap = overlapping_pairs(win_start, win_end, win_group, box_start, box_end, box_group)
    if not len(i):
        return labels
    window_len = np.asarray(win_end, float)[i] - np.asarray(win_start, float)[i]
    box_len = np.asarray(box_end, float)[j] - np.asarray(box_start, float)[j]
    shorter = np.minimum(window_len, box_len)
    required = (
        DEFAULT_OVERLAP_FRACTION * shorter
        if min_overlap_s is None
        else np.minimum(min_overlap_s, shorter)
    )
    hit = overlap >= required - 1e-9
    cls = np.asarray(box_class)[j]
    labels[i[~hit], cls[~hit]] = IGNORED
    labels[i[hit], cls[hit]] = POSITIVE  # after: a positive box outranks a grazing one
    return labels


@dataclass
class WindowLevel:
    """Window-level results: one row per class and a pooled `all` row, the threshold sweep,
    and each class's precision-recall curve with its operating point (for plots)."""

    table: pd.DataFrame
    sweep: pd.DataFrame
    curves: dict[str, dict[str, np.ndarray | float]] = field(default_factory=dict)


def window_level(
    scores: np.ndarray,
    score_classes: list[str],
    classes: list[str],
    labels: np.ndarray,
    thresholds: dict[str, float],
    recording: np.ndarray,
    draws: np.ndarray,
    level: float,
) -> WindowLevel:
    """Per-class AP, ROC AUC and precision/recall/F1 at the thresholds, with intervals.

    Args:
        scores: (N, K) window scores for every class of the model (`score_classes`).
        score_classes: the K model classes (the top class is taken over all of them).
        classes: the C evaluated classes (each in `score_classes`).
        labels: (N, C) from `label_windows`.
        thresholds: per evaluated class.
        recording: (N,) recording index of each window (the bootstrap unit).
        draws: (B, R) bootstrap draws over recordings.
        level: interval coverage.
    """
    n_rec = draws.shape[1] if draws.ndim == 2 else int(recording.max(initial=-1)) + 1
    top = scores.argmax(axis=1) if len(scores) else np.zeros(0, np.int64)
    n_classes = len(classes)
    tp = np.zeros((n_rec, n_classes), np.int64)
    fp, fn = tp.copy(), tp.copy()
    rows: dict[str, list] = {
        k: [] for k in ("windows", "positives", "ignored", "ap", "ap_low", "ap_high", "auc")
    }
    rows.update({"auc_low": [], "auc_high": [], "threshold": []})
    ap_reps, auc_reps = [], []
    sweep_rows = []
    curves: dict[str, dict[str, np.ndarray | float]] = {}
    sweep_total = np.zeros((len(SWEEP), 3), np.int64)
    for c, name in enumerate(classes):
        k = score_classes.index(name)
        valid = labels[:, c] != IGNORED
        y = labels[:, c] == POSITIVE
        s = scores[:, k]
        detected = (top == k) & (s >= thresholds[name])
        tp[:, c] = np.bincount(recording[valid & detected & y], minlength=n_rec)
        fp[:, c] = np.bincount(recording[valid & detected & ~y], minlength=n_rec)
        fn[:, c] = np.bincount(recording[valid & ~detected & y], minlength=n_rec)
        ap = weighted_average_precision(s[valid], y[valid])
        auc = weighted_roc_auc(s[valid], y[valid])
        ap_reps.append(weighted_average_precision(s[valid], y[valid], draws, recording[valid]))
        auc_reps.append(weighted_roc_auc(s[valid], y[valid], draws, recording[valid]))
        ap_low, ap_high = interval(ap_reps[-1][:, None], level)
        auc_low, auc_high = interval(auc_reps[-1][:, None], level)
        for key, value in (
            ("windows", int(valid.sum())),
            ("positives", int((valid & y).sum())),
            ("ignored", int((~valid).sum())),
            ("ap", ap[0]),
            ("ap_low", ap_low[0]),
            ("ap_high", ap_high[0]),
            ("auc", auc[0]),
            ("auc_low", auc_low[0]),
            ("auc_high", auc_high[0]),
            ("threshold", thresholds[name]),
        ):
            rows[key].append(value)
        precision, recall, cuts = precision_recall_curve(s[valid], y[valid])
        curves[name] = {
            "precision": precision,
            "recall": recall,
            "thresholds": cuts,
            "ap": float(ap[0]),
        }
        counts = _sweep(s[valid & (top == k)], y[valid & (top == k)], int((valid & y).sum()))
        sweep_total += counts
        sweep_rows += [(name, t, *row) for t, row in zip(SWEEP, counts, strict=True)]
    sweep_rows += [("all", t, *row) for t, row in zip(SWEEP, sweep_total, strict=True)]
    ratio = ratio_columns(tp, fp, fn, draws, level)
    for c, name in enumerate(classes):
        curves[name]["operating_point"] = np.array([ratio["recall"][c], ratio["precision"][c]])
    table = pd.DataFrame({"label": [*classes, "all"]})
    any_label = (labels != IGNORED).any(axis=1) if n_classes else np.zeros(len(labels), bool)
    pooled = {
        "windows": int(any_label.sum()),
        "positives": int(sum(rows["positives"])),
        "ignored": int(sum(rows["ignored"])),
        **_macro(np.array(rows["ap"]), np.array(ap_reps).T, "ap", level, len(draws)),
        **_macro(np.array(rows["auc"]), np.array(auc_reps).T, "auc", level, len(draws)),
        "threshold": np.nan,
    }
    for key in rows:
        table[key] = [*rows[key], pooled[key]]
    for key, value in ratio.items():
        table[key] = value
    sweep = pd.DataFrame(sweep_rows, columns=["label", "threshold", "tp", "fp", "fn"])
    sweep = pd.concat(
        [sweep, pd.DataFrame(ratios(*sweep[["tp", "fp", "fn"]].to_numpy().T))], axis=1
    )
    return WindowLevel(table, sweep, curves)


def _sweep(candidate_scores: np.ndarray, candidate_positive: np.ndarray, n_positive: int):
    """(len(SWEEP), 3) tp, fp, fn of the decision `score >= t` among a class's top windows."""
    order = np.argsort(candidate_scores, kind="mergesort")
    s = candidate_scores[order]
    y = candidate_positive[order].astype(np.int64)
    positives_from = np.r_[np.cumsum(y[::-1])[::-1], 0]  # positives at or after each index
    first = np.searchsorted(s, np.asarray(SWEEP), side="left")
    detected = len(s) - first
    tp = positives_from[first]
    return np.column_stack([tp, detected - tp, n_positive - tp])


def _macro(
    point: np.ndarray, replicates: np.ndarray, name: str, level: float, n_draws: int
) -> dict[str, float]:
    """The mean over classes where the metric is defined (mAP, macro AUC) and its interval."""
    defined = ~np.isnan(point)
    value = float(point[defined].mean()) if defined.any() else np.nan
    low = high = np.nan
    if n_draws and defined.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # replicates with no class defined
            means = np.nanmean(replicates[:, defined], axis=1)
        bounds = interval(means[:, None], level)
        low, high = float(bounds[0][0]), float(bounds[1][0])
    return {name: value, f"{name}_low": low, f"{name}_high": high}
