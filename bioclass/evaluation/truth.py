"""Event-level precision and recall of detections against a ground-truth table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError
from bioclass.evaluation.intervals import overlapping_pairs, shared_codes


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


def match_one_to_one(
    det_start: np.ndarray,
    det_end: np.ndarray,
    det_group: np.ndarray,
    truth_start: np.ndarray,
    truth_end: np.ndarray,
    truth_group: np.ndarray,
    min_overlap_s: float = 0.0,
) -> np.ndarray:
    """One-to-one matching of detections to truth events of the same group.

    A pair may match when both are in one group (same label, same recording: the caller's
    integer codes) and their intervals overlap by more than `min_overlap_s`; each truth event
    takes at most one detection and vice versa, greedily by largest overlap (ties: the later
    detection row, then the later truth row, first).

    Returns:
        (n_detections,) index of the truth row each detection matched, -1 for none.
    """
    i, j, overlap = overlapping_pairs(
        det_start, det_end, det_group, truth_start, truth_end, truth_group
    )
    keep = overlap > min_overlap_s
    i, j, overlap = i[keep], j[keep], overlap[keep]
    matched = np.full(len(det_start), -1, dtype=np.int64)
    truth_taken = np.zeros(len(truth_start), dtype=bool)
    for k in np.lexsort((-j, -i, -overlap)):  # largest overlap first
        d, t = i[k], j[k]
        if matched[d] < 0 and not truth_taken[t]:
            matched[d] = t
            truth_taken[t] = True
    return matched


def match_events(
    detections: pd.DataFrame, truth: pd.DataFrame, min_overlap_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detections to truth events of the same label (and file).

    A pair matches when the two intervals overlap by more than `min_overlap_s`; each truth
    event takes at most one detection and vice versa, greedily by largest overlap. A truth
    table's `file` column is compared by file name: truth tables often name files without
    folders.

    Returns:
        (matched flags per detection row, matched flags per truth row).
    """
    det_keys = [detections["label"].astype(str).to_numpy()]
    truth_keys = [truth["label"].astype(str).to_numpy()]
    if "file" in truth.columns:
        det_keys.append([Path(str(f)).name for f in detections["file"]])
        truth_keys.append([Path(str(f)).name for f in truth["file"]])
    det_group, truth_group = shared_codes(det_keys, truth_keys)
    matched = match_one_to_one(
        detections["start_time"].to_numpy(float),
        detections["end_time"].to_numpy(float),
        det_group,
        truth["start_time"].to_numpy(float),
        truth["end_time"].to_numpy(float),
        truth_group,
        min_overlap_s,
    )
    truth_hit = np.zeros(len(truth), dtype=bool)
    truth_hit[matched[matched >= 0]] = True
    return matched >= 0, truth_hit


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
