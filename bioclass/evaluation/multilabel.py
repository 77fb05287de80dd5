"""Metrics of multi-label windows (several classes or none per window): per-class average
precision, ROC AUC, and precision / recall / F1 of the scan's decision at given thresholds.

The decision is the one `scan` applies to every window, so the figures describe what a scan of
the validation recordings would report: a window is detected as class c when c is its top class
and its score reaches c's threshold. A window holding two classes can therefore be right about
one of them only; AP and AUC rank each class's own score and see both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bioclass.evaluation.metrics import average_precision
from bioclass.evaluation.ranking import weighted_roc_auc

DEFAULT_THRESHOLD = 0.5  # during training, before thresholds are fitted


def multilabel_metrics(
    scores: np.ndarray,
    positives: np.ndarray,
    classes: list[str],
    thresholds: np.ndarray | None = None,
) -> dict[str, Any]:
    """All metrics of multi-label windows.

    Args:
        scores: (N, C) class scores (sigmoid).
        positives: (N, C) multi-hot targets.
        classes: C class names.
        thresholds: (C,) decision thresholds (default 0.5 for every class).

    Returns:
        JSON-able dict: map, auc (macro over the classes with positives, and with positives
        and negatives), precision, recall, f1 (micro: counts summed over classes), n_windows,
        classes, per_class {name: ap, auc, precision, recall, f1, support}, thresholds.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives) > 0.5
    n, n_classes = positives.shape
    if thresholds is None:
        thresholds = np.full(n_classes, DEFAULT_THRESHOLD)
    top = scores.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    detected = np.zeros_like(positives)
    if n:
        detected[np.arange(n), top] = scores[np.arange(n), top] >= thresholds[top]
    tp = (detected & positives).sum(axis=0)
    fp = (detected & ~positives).sum(axis=0)
    fn = (~detected & positives).sum(axis=0)
    support = positives.sum(axis=0)
    per_class = {}
    aps, aucs = [], []
    for c, name in enumerate(classes):
        ap = average_precision(scores[:, c], positives[:, c])
        auc = float(weighted_roc_auc(scores[:, c], positives[:, c])[0]) if n else float("nan")
        precision, recall, f1 = _ratios(tp[c], fp[c], fn[c])
        per_class[name] = {
            "ap": _f(ap),
            "auc": _f(auc),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(support[c]),
            "threshold": float(thresholds[c]),
        }
        aps.append(ap)
        aucs.append(auc)
    precision, recall, f1 = _ratios(tp.sum(), fp.sum(), fn.sum())
    return {
        "map": _mean(aps),
        "auc": _mean(aucs),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_windows": int(n),
        "classes": list(classes),
        "per_class": per_class,
    }


def _ratios(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """Precision, recall, F1; undefined (None) without detections / without positives."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    return (
        None if precision is None else float(precision),
        None if recall is None else float(recall),
        None if f1 is None else float(f1),
    )


def _mean(values: list[float]) -> float | None:
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else None


def _f(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)
