"""Classification metrics: UAR, mAP, accuracy, per-class recall/precision/AP, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum over the ranked scores.

    AP = sum_k (R_k - R_{k-1}) P_k over thresholds at each distinct score (ties share a rank).
    Returns NaN when there are no positives.
    """
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order].astype(np.float64)
    tp = np.cumsum(y)
    # Only the last position of each run of tied scores is a threshold.
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, n_pred = tp[last], last + 1
    precision = tp / n_pred
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are true classes, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(
    scores: np.ndarray, y_true: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """All metrics for single-label clips.

    Args:
        scores: (N, C) class scores (probabilities or logits: only the ranking matters).
        y_true: (N,) true class indices.
        classes: C class names.

    Returns:
        JSON-able dict: uar, map, accuracy, n_clips, per_class {name: recall, precision, ap,
        support}, confusion (list of rows), classes. UAR and mAP average over classes that have
        clips (a class absent from the data has no recall to measure).
    """
    n_classes = len(classes)
    y_pred = scores.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    recall = np.where(support > 0, diag / np.maximum(support, 1), np.nan)
    precision = np.where(predicted > 0, diag / np.maximum(predicted, 1), np.nan)
    ap = np.array([average_precision(scores[:, c], y_true == c) for c in range(n_classes)])
    present = support > 0
    per_class = {
        name: {
            "recall": _f(recall[c]),
            "precision": _f(precision[c]),
            "ap": _f(ap[c]),
            "support": int(support[c]),
        }
        for c, name in enumerate(classes)
    }
    return {
        "uar": _f(np.mean(recall[present])) if present.any() else None,
        "map": _f(np.mean(ap[present])) if present.any() else None,
        "accuracy": _f(diag.sum() / max(len(y_true), 1)),
        "n_clips": int(len(y_true)),
        "classes": list(classes),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def _f(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)
