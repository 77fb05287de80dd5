"""The common result of every reader: one row per box, and the recordings the tables cover."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bioclass.annotations.errors import AnnotationValueError, where

COLUMNS = [
    "file",  # absolute path of the recording
    "start_time",  # seconds from the start of that file
    "end_time",
    "label",
    "low_freq",  # Hz; NaN when the table gives no band
    "high_freq",
    "channel",  # 0-based (as in the detections CSV); <NA> when the table does not say
    "source",  # the table the box came from
    "row",  # its 1-based row there (header = row 1), for messages further on
]

# Seconds a box may reach past the end of its recording and still be taken (and clipped):
# tables round times (bioclass writes 4 decimals; Raven sums rounded begin times and offsets).
END_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class Box:
    """One annotated box as a reader found it."""

    file: str
    start_time: float
    end_time: float
    label: str
    low_freq: float
    high_freq: float
    channel: int | None
    source: str
    row: int


@dataclass(frozen=True)
class Annotations:
    """Boxes read from annotation tables.

    Attributes:
        boxes: one row per box, columns `COLUMNS`, in the order the tables were read.
        durations: every recording the tables cover -> its duration in seconds, including
            recordings whose table has no box (annotated, nothing found: all negative).
    """

    boxes: pd.DataFrame
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def recordings(self) -> list[str]:
        return list(self.durations)

    @property
    def labels(self) -> list[str]:
        return sorted(self.boxes["label"].unique())

    def __len__(self) -> int:
        return len(self.boxes)


def boxes_frame(boxes: Iterable[Box]) -> pd.DataFrame:
    """The boxes as a DataFrame with fixed dtypes (an empty table has the same columns)."""
    rows = list(boxes)
    return pd.DataFrame(
        {
            "file": pd.Series([b.file for b in rows], dtype=object),
            "start_time": pd.Series([b.start_time for b in rows], dtype=float),
            "end_time": pd.Series([b.end_time for b in rows], dtype=float),
            "label": pd.Series([b.label for b in rows], dtype=object),
            "low_freq": pd.Series([b.low_freq for b in rows], dtype=float),
            "high_freq": pd.Series([b.high_freq for b in rows], dtype=float),
            "channel": pd.array([b.channel for b in rows], dtype="Int64"),
            "source": pd.Series([b.source for b in rows], dtype=object),
            "row": pd.Series([b.row for b in rows], dtype="int64"),
        },
        columns=COLUMNS,
    )


def concat(parts: Iterable[Annotations]) -> Annotations:
    """Annotations of several tables as one (boxes in order, recordings in first-seen order)."""
    parts = list(parts)
    durations: dict[str, float] = {}
    for part in parts:
        durations.update(part.durations)
    frames = [p.boxes for p in parts if len(p.boxes)]
    boxes = pd.concat(frames, ignore_index=True) if frames else boxes_frame([])
    return Annotations(boxes, durations)


def check_times(path: Path, row: int, start: float, end: float, names: tuple[str, str]) -> None:
    """A box starts at or after 0 and ends after it starts; `names` are the table's columns."""
    if start < 0:
        raise AnnotationValueError(
            f"{where(path, row)}: {names[0]} {start:g} is negative; "
            "times count in seconds from the start of the recording"
        )
    if end == start:
        raise AnnotationValueError(
            f"{where(path, row)}: {names[1]} equals {names[0]} ({start:g}): a point, not a box; "
            "give the call's start and end"
        )
    if end < start:
        raise AnnotationValueError(
            f"{where(path, row)}: {names[1]} {end:g} is before {names[0]} {start:g}; "
            "swap them or fix the box"
        )


def check_band(path: Path, row: int, low: float, high: float, names: tuple[str, str]) -> None:
    """A frequency band, where given, is not negative and not upside down."""
    for value, name in ((low, names[0]), (high, names[1])):
        if value < 0:
            raise AnnotationValueError(f"{where(path, row)}: {name} {value:g} is negative")
    if not (math.isnan(low) or math.isnan(high)) and high < low:
        raise AnnotationValueError(
            f"{where(path, row)}: {names[1]} {high:g} is below {names[0]} {low:g}; swap them"
        )


def fit_inside(path: Path, row: int, file: str, end: float, duration: float) -> float:
    """The box's end, clipped to the recording when it overshoots by rounding only."""
    if end > duration + END_TOLERANCE_S:
        raise AnnotationValueError(
            f"{where(path, row)}: the box ends at {end:g} s, past the end of {file} "
            f"({duration:g} s long); is it the right recording?"
        )
    return min(end, duration)
