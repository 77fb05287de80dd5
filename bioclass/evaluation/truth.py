"""Event-level precision and recall of detections against a ground-truth table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError


def read_truth(path: str | Path) -> pd.DataFrame:
    """A truth table: `start_time,end_time,label` (seconds), optional `file` column."""
    path = Path(path)
    if not path.is_file():
        raise BioclassError(f"truth table not found: {path}")
    table = pd.read_csv(path, sep=None, engine="python")
    missing = {"start_time", "end_time", "label"} - set(table.columns)
    if missing:
        raise BioclassError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return table


def match_events(
    detections: pd.DataFrame, truth: pd.DataFrame, min_overlap_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detections to truth events of the same label (and file).

    A pair matches when the two intervals overlap by more than `min_overlap_s`; each truth
    event takes at most one detection and vice versa, greedily by largest overlap.

    Returns:
        (matched flags per detection row, matched flags per truth row).
    """
    det_hit = np.zeros(len(detections), dtype=bool)
    truth_hit = np.zeros(len(truth), dtype=bool)
    by_file = "file" in truth.columns
    pairs = []
    for i, d in enumerate(detections.itertuples(index=False)):
        same = truth["label"].to_numpy() == d.label
        if by_file:
            same &= _same_file(truth["file"], d.file)
        for j in np.flatnonzero(same):
            overlap = min(d.end_time, truth["end_time"].iat[j]) - max(
                d.start_time, truth["start_time"].iat[j]
            )
            if overlap > min_overlap_s:
                pairs.append((overlap, i, j))
    for _, i, j in sorted(pairs, reverse=True):
        if not det_hit[i] and not truth_hit[j]:
            det_hit[i] = truth_hit[j] = True
    return det_hit, truth_hit


def _same_file(column: pd.Series, file: str) -> np.ndarray:
    # Truth tables often name files without folders: compare names when paths differ.
    name = Path(file).name
    return np.array([f == file or Path(str(f)).name == name for f in column])


def event_scores(detections: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per-label and overall event precision, recall and F1.

    Returns:
        Rows per label plus `all`: label, truth, detections, matched, precision, recall, f1.
    """
    det_hit, truth_hit = match_events(detections, truth)
    labels = sorted(set(truth["label"]) | set(detections["label"]))
    rows = []
    for label in [*labels, "all"]:
        dm = (
            np.ones(len(detections), bool)
            if label == "all"
            else detections["label"].eq(label).to_numpy()
        )
        tm = np.ones(len(truth), bool) if label == "all" else truth["label"].eq(label).to_numpy()
        n_det, n_truth = int(dm.sum()), int(tm.sum())
        tp_det, tp_truth = int(det_hit[dm].sum()), int(truth_hit[tm].sum())
        precision = tp_det / n_det if n_det else float("nan")
        recall = tp_truth / n_truth if n_truth else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if n_det and n_truth and precision + recall > 0
            else float("nan")
        )
        rows.append(
            {
                "label": label,
                "truth": n_truth,
                "detections": n_det,
                "matched": tp_truth,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    return pd.DataFrame(rows)
