"""Per-class detection thresholds: fitted on validation clips at the end of training, stored in
the checkpoint, overridable from a CSV, with a default for classes that have none."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bioclass.core.errors import BioclassError

# The threshold of a class that has none fitted or given (scan and evaluation alike).
DEFAULT_THRESHOLD = 0.5

FIT_METHOD = (
    "per class c, the threshold t maximising F1 on the validation clips of the decision rule the "
    "scanner applies (a clip is detected as c when c is its top class and its score >= t); "
    "t is set midway between the lowest detected score and the next lower score"
)


def fit_thresholds(
    scores: np.ndarray, targets: np.ndarray, classes: list[str], background_label: str
) -> dict[str, dict[str, Any]]:
    """Fit each class's threshold on labelled clips, maximising F1 of the scan decision rule.

    Args:
        scores: (N, C) clip scores (softmax or sigmoid).
        targets: (N,) true class indices, or (N, C) multi-hot targets (multi-label windows:
            a window is a true detection of c when c is among its classes).
        classes: C class names.
        background_label: fitted like the others (used with --keep-background).

    Returns:
        {class: {threshold, f1, precision, recall, support}}; `threshold` is None when the class
        has no validation clips or no threshold detects any of them (the scan default applies).
    """
    del background_label  # every class is fitted; the scan decides what background means
    top = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.int64)
    fitted = {}
    targets = np.asarray(targets)
    for c, name in enumerate(classes):
        positive = targets[:, c] > 0.5 if targets.ndim == 2 else targets == c
        support = int(positive.sum())
        entry: dict[str, Any] = {
            "threshold": None,
            "f1": None,
            "precision": None,
            "recall": None,
            "support": support,
        }
        candidates = top == c
        if support and candidates.any():
            s = scores[candidates, c]
            y = positive[candidates]
            order = np.argsort(-s, kind="mergesort")
            s, y = s[order], y[order]
            tp = np.cumsum(y)
            n_detected = np.arange(1, len(s) + 1)
            # Only the last of a run of tied scores is a possible cut.
            cuts = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
            precision = tp[cuts] / n_detected[cuts]
            recall = tp[cuts] / support
            f1 = np.where(
                tp[cuts] > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0
            )
            best = int(np.argmax(f1))
            if f1[best] > 0:
                i = cuts[best]
                lower = s[i + 1] if i + 1 < len(s) else 0.0
                entry.update(
                    threshold=float((s[i] + lower) / 2),
                    f1=float(f1[best]),
                    precision=float(precision[best]),
                    recall=float(recall[best]),
                )
        fitted[name] = entry
    return fitted


def read_thresholds_csv(path: str | Path, classes: list[str]) -> dict[str, float]:
    """`label,threshold` rows overriding thresholds; every label must be one of `classes`."""
    import pandas as pd  # here: a scan reads a thresholds table only when given one

    path = Path(path)
    if not path.is_file():
        raise BioclassError(f"thresholds file not found: {path}")
    try:
        table = pd.read_csv(path, dtype={"label": str}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BioclassError(f"{path}: cannot parse CSV ({exc})") from None
    missing = {"label", "threshold"} - set(table.columns)
    if missing:
        raise BioclassError(
            f"{path}: needs columns label,threshold (missing: {', '.join(sorted(missing))})"
        )
    out = {}
    for i, (label, value) in enumerate(zip(table["label"], table["threshold"], strict=True)):
        row = i + 2
        label = str(label).strip()
        if label not in classes:
            close = difflib.get_close_matches(label, classes, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise BioclassError(
                f"{path}, row {row}: label '{label}' is not one of the model's "
                f"classes ({', '.join(classes)}){hint}"
            )
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = float("nan")
        if not 0.0 <= value <= 1.0:
            raise BioclassError(
                f"{path}, row {row}: threshold must be a number in [0, 1], "
                f"got {table['threshold'].iloc[i]!r}"
            )
        out[label] = value
    return out


def resolve_thresholds(
    classes: list[str],
    default: float,
    fitted: dict[str, float] | None,
    override: dict[str, float] | None,
) -> np.ndarray:
    """(C,) thresholds: the override where given, else the fitted one, else the default."""
    values = []
    for name in classes:
        if override and name in override:
            values.append(override[name])
        elif fitted and fitted.get(name) is not None:
            values.append(float(fitted[name]))
        else:
            values.append(default)
    return np.asarray(values, dtype=np.float64)


def choose_thresholds(
    classes: list[str],
    stored: Mapping[str, float | None] | None,
    stored_origin: str,
    threshold: float | None = None,
    thresholds_csv: Path | None = None,
) -> tuple[dict[str, float], str]:
    """Per-class thresholds as a scan would apply them, and where they came from.

    `--thresholds FILE` for the classes it lists, then `--threshold T` for every class, then the
    stored ones (a manifest's or a checkpoint's), then `DEFAULT_THRESHOLD`.
    """
    override = read_thresholds_csv(thresholds_csv, classes) if thresholds_csv else None
    fitted = stored if threshold is None else None
    default = DEFAULT_THRESHOLD if threshold is None else threshold
    values = resolve_thresholds(classes, default, dict(fitted) if fitted else None, override)
    if thresholds_csv is not None:
        origin = f"--thresholds {thresholds_csv}"
    elif threshold is not None:
        origin = f"--threshold {threshold:g}"
    elif stored and any(v is not None for v in stored.values()):
        origin = stored_origin
    else:
        origin = f"default {DEFAULT_THRESHOLD:g} (no stored thresholds)"
    return dict(zip(classes, map(float, values), strict=True)), origin
