"""Event- and recording-level metrics: detections against boxes.

Events: a detection and a box of the same class in the same recording match when they overlap
in time, one-to-one, greedily by largest overlap (`truth.match_one_to_one`, the matching of
`scan --truth`). A matched detection is a true positive; an unmatched detection is a false
positive when its midpoint lies inside the annotated extent (outside it nothing is known, so it
is left out); an unmatched box is a miss.

Recordings: a class is present in a recording when it has a box there, and detected when it has
a counted detection there (matched, or inside the extent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bioclass.evaluation.bootstrap import per_recording, ratio_columns
from bioclass.evaluation.truth import match_one_to_one

TRUE, FALSE, OUTSIDE = "true positive", "false positive", "outside extent"


@dataclass(frozen=True)
class Events:
    """Detections and boxes as index arrays (recording and class indices, times)."""

    recording: np.ndarray
    cls: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass
class EventLevel:
    """Event- and recording-level tables (one row per class and a pooled `all` row), and per
    detection and per box what became of it."""

    events: pd.DataFrame
    recordings: pd.DataFrame
    outcome: np.ndarray  # per detection: TRUE, FALSE or OUTSIDE
    matched_box: np.ndarray  # per detection: the box row it matched, -1 for none
    box_found: np.ndarray  # per box: matched by a detection


def event_level(
    detections: Events,
    inside_extent: np.ndarray,
    boxes: Events,
    classes: list[str],
    n_recordings: int,
    draws: np.ndarray,
    level: float,
) -> EventLevel:
    """Match detections to boxes and count per recording and class.

    Args:
        detections: the detections to evaluate (of evaluated classes on evaluated recordings).
        inside_extent: (D,) whether each detection's midpoint lies inside the annotated extent.
        boxes: the boxes (of evaluated classes on evaluated recordings).
        classes: the C evaluated class names.
        n_recordings: R, the evaluated recordings (the bootstrap unit).
        draws: (B, R) bootstrap draws.
        level: interval coverage.
    """
    n_classes = len(classes)
    matched = match_one_to_one(
        detections.start,
        detections.end,
        detections.recording * n_classes + detections.cls,
        boxes.start,
        boxes.end,
        boxes.recording * n_classes + boxes.cls,
    )
    hit = matched >= 0
    counted = hit | np.asarray(inside_extent, dtype=bool)
    box_found = np.zeros(len(boxes.start), dtype=bool)
    box_found[matched[hit]] = True
    outcome = np.where(hit, TRUE, np.where(counted, FALSE, OUTSIDE)).astype(object)

    def count(events: Events, mask: np.ndarray) -> np.ndarray:
        return per_recording(events.recording, events.cls, mask, n_recordings, n_classes)

    tp = count(detections, hit)
    fp = count(detections, counted & ~hit)
    fn = count(boxes, ~box_found)
    event_table = pd.DataFrame(
        {
            "label": [*classes, "all"],
            "boxes": _with_total(count(boxes, np.ones(len(boxes.start), bool)).sum(axis=0)),
            "detections": _with_total(count(detections, counted).sum(axis=0)),
            **ratio_columns(tp, fp, fn, draws, level),
        }
    )

    present = count(boxes, np.ones(len(boxes.start), bool)) > 0
    detected = count(detections, counted) > 0
    recording_table = pd.DataFrame(
        {
            "label": [*classes, "all"],
            "recordings": [n_recordings] * n_classes + [n_recordings * n_classes],
            "present": _with_total(present.sum(axis=0)),
            "detected": _with_total(detected.sum(axis=0)),
            **ratio_columns(
                present & detected, detected & ~present, present & ~detected, draws, level
            ),
        }
    )
    return EventLevel(event_table, recording_table, outcome, matched, box_found)


def _with_total(per_class: np.ndarray) -> np.ndarray:
    return np.r_[per_class, per_class.sum()]
