"""Audacity label files: `start<TAB>end<TAB>label` per line, in seconds.

With Audacity's extended label style a line `\\<TAB>low<TAB>high` (Hz) follows a label drawn with
a spectral selection; -1 stands for an undefined edge. bioclass's scan writes `label (0.87)`,
and ` chN` after it for a scan of separate channels: the score is dropped, the channel kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from bioclass.annotations.errors import AnnotationFormatError, AnnotationValueError, where
from bioclass.annotations.locate import AudioLookup
from bioclass.annotations.table import (
    Annotations,
    Box,
    boxes_frame,
    check_band,
    check_times,
    fit_inside,
)
from bioclass.annotations.text import number, read_lines

# What `bioclass scan` writes after the label: ` (score)` with two decimals, then ` chN`.
SCAN_SUFFIX = re.compile(r"^(?P<label>.*\S) \((?:0|1)\.\d\d\)(?: ch(?P<channel>\d+))?$")
UNDEFINED_HZ = -1.0  # Audacity's value for a band edge that was not set


@dataclass(frozen=True)
class _Label:
    row: int
    start: float
    end: float
    text: str
    channel: int | None
    low: float = math.nan
    high: float = math.nan


def read_audacity(
    path: str | Path,
    audio: str | Path | None = None,
    audio_root: str | Path | None = None,
    lookup: AudioLookup | None = None,
    rel_dir: Path | None = None,
) -> Annotations:
    """Boxes of one Audacity label file (an empty file: the recording has none).

    Args:
        path: the label file.
        audio: its recording; default the file with the same name beside it (or below
            `audio_root`, mirroring `rel_dir`).
        audio_root: where recordings are when not beside their label files.
        lookup: shared across the tables of one read.
        rel_dir: the file's folder below a folder of tables.

    Raises:
        AnnotationError: naming the file and row, for any problem in it.
    """
    path = Path(path)
    lookup = lookup if lookup is not None else AudioLookup(audio_root)
    labels: list[_Label] = []
    for row, line in read_lines(path):
        cells = [c.strip() for c in line.split("\t")]
        if cells[0] == "\\":
            labels[-1:] = [_band(path, row, cells, labels)]
        else:
            labels.append(_label(path, row, cells))
    file = lookup.given(audio, path) if audio is not None else lookup.beside(path, rel_dir)
    info = lookup.info(file, path, None)
    boxes = []
    for label in labels:
        if label.channel is not None and label.channel >= info.n_channels:
            raise AnnotationValueError(
                f"{where(path, label.row)}: ch{label.channel}, but {file} has "
                f"{info.n_channels} channel(s)"
            )
        end = fit_inside(path, label.row, file, label.end, info.duration_seconds)
        boxes.append(
            Box(
                file,
                label.start,
                end,
                label.text,
                label.low,
                label.high,
                label.channel,
                str(path),
                label.row,
            )
        )
    return Annotations(boxes_frame(boxes), {file: info.duration_seconds})


def _label(path: Path, row: int, cells: list[str]) -> _Label:
    if len(cells) < 2:
        raise AnnotationFormatError(
            f"{where(path, row)}: not tab-separated; Audacity labels are "
            "start<TAB>end<TAB>label (File > Export Other > Export Labels writes them)"
        )
    start = number(cells[0], path, row, "start time")
    end = number(cells[1], path, row, "end time")
    check_times(path, row, start, end, ("start time", "end time"))
    # Audacity never writes tabs inside a label; another tool's extra cells stay in the text.
    text = " ".join(c for c in cells[2:] if c)
    channel = None
    scanned = SCAN_SUFFIX.match(text)
    if scanned is not None:
        text = scanned.group("label")
        if scanned.group("channel") is not None:
            channel = int(scanned.group("channel"))
    if not text:
        raise AnnotationValueError(f"{where(path, row)}: the label has no text; name it")
    return _Label(row, start, end, text, channel)


def _band(path: Path, row: int, cells: list[str], labels: list[_Label]) -> _Label:
    """The frequency line below a label, applied to that label."""
    if not labels or not math.isnan(labels[-1].low) or not math.isnan(labels[-1].high):
        raise AnnotationFormatError(
            f"{where(path, row)}: a frequency line (\\ low high) must follow a label line"
        )
    if len(cells) < 3:
        raise AnnotationFormatError(
            f"{where(path, row)}: a frequency line needs \\<TAB>low<TAB>high (Hz)"
        )
    low, high = (
        math.nan if v == UNDEFINED_HZ else v
        for v in (
            number(cells[1], path, row, "low frequency"),
            number(cells[2], path, row, "high frequency"),
        )
    )
    check_band(path, row, low, high, ("low frequency", "high frequency"))
    return replace(labels[-1], low=low, high=high)
