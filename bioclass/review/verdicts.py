"""Verdicts from annotation tables, so that the review loop can run without a listener (tests,
benchmarks, a recording already annotated by hand).

A reviewed detection whose span overlaps a box of its own label is `yes`; one that overlaps only
boxes of other labels takes the label it overlaps most (ties: the first name in sorted order);
one that overlaps no box is `no`. Only recordings the tables cover are judged: a recording no
table covers has unknown content, so its detections keep an empty verdict. A covered recording
counts as annotated from start to end (an empty Audacity label file says: listened to, nothing
found).

A detection over boxes of several classes (two species calling at once) still gets one verdict
by that rule (`yes` when its own class is among them): a review row holds one answer, and
`data.reviewed` reads it as that class alone over the detection's span. Such rows are counted
(`mixed_rows`) so the review can say so: trained with the same tables in `data.annotations`,
the other classes' boxes still count there.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from bioclass.annotations import Annotations
from bioclass.annotations.review import NO, YES


def overlap_by_label(
    start: float, end: float, channel: int | None, boxes: pd.DataFrame
) -> dict[str, float]:
    """Seconds of the span [start, end] each label's boxes of one recording overlap."""
    overlap: dict[str, float] = defaultdict(float)
    for box in boxes.itertuples(index=False):
        if channel is not None and not pd.isna(box.channel) and int(box.channel) != channel:
            continue  # a box on another channel says nothing about this one
        shared = min(end, box.end_time) - max(start, box.start_time)
        if shared > 0:
            overlap[box.label] += shared
    return dict(overlap)


def verdict_from_boxes(
    label: str, start: float, end: float, channel: int | None, boxes: pd.DataFrame
) -> str:
    """The verdict of one detection against the boxes of its recording."""
    overlap = overlap_by_label(start, end, channel, boxes)
    if label in overlap:
        return YES
    if not overlap:
        return NO
    return min(overlap, key=lambda name: (-overlap[name], name))


def mixed_rows(review: pd.DataFrame, annotations: Annotations) -> list[int]:
    """Positions of the review rows whose span overlaps boxes of more than one label."""
    by_file = {f: g for f, g in annotations.boxes.groupby("file", sort=False)}
    has_channel = "channel" in review.columns
    mixed = []
    for k, row in enumerate(review.itertuples(index=False)):
        if row.file not in by_file:
            continue
        channel = row.channel if has_channel and not pd.isna(row.channel) else None
        overlap = overlap_by_label(
            row.start_time,
            row.end_time,
            None if channel is None else int(channel),
            by_file[row.file],
        )
        if len(overlap) > 1:
            mixed.append(k)
    return mixed


def fill_verdicts(review: pd.DataFrame, annotations: Annotations) -> tuple[pd.DataFrame, list[str]]:
    """The review with `verdict` filled from `annotations` where a table covers the recording.

    Args:
        review: rows with `file` (absolute, resolved, as the annotation readers give it),
            `start_time`, `end_time`, `label` and optionally `channel`.
        annotations: from `read_annotations`.

    Returns:
        (the review with `verdict` set on covered recordings, the uncovered recordings in first
        -seen order; their rows keep the verdict they had).
    """
    out = review.copy()
    if "verdict" not in out.columns:
        out["verdict"] = ""
    covered = set(annotations.durations)
    by_file = {f: g for f, g in annotations.boxes.groupby("file", sort=False)}
    empty = annotations.boxes.iloc[:0]
    has_channel = "channel" in out.columns
    uncovered: dict[str, None] = {}
    verdicts = []
    for row in out.itertuples(index=False):
        if row.file not in covered:
            uncovered.setdefault(row.file, None)
            verdicts.append(row.verdict)
            continue
        channel = row.channel if has_channel and not pd.isna(row.channel) else None
        verdicts.append(
            verdict_from_boxes(
                row.label,
                row.start_time,
                row.end_time,
                None if channel is None else int(channel),
                by_file.get(row.file, empty),
            )
        )
    out["verdict"] = pd.Series(verdicts, index=out.index, dtype=object)
    return out, list(uncovered)
