"""CSV annotation tables: `file,start_time,end_time,label`, optionally `low_freq,high_freq`
(Hz) and `channel` (0-based); other columns are ignored, so a bioclass detections CSV reads as
annotations too. Relative `file` paths are below `audio_root`, else beside the CSV."""

from __future__ import annotations

import math
from pathlib import Path

from bioclass.annotations.columns import Columns
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
from bioclass.annotations.text import csv_records, number, optional_number
from bioclass.audio.io import AudioInfo

REQUIRED = ("file", "start_time", "end_time", "label")


def read_csv_table(
    path: str | Path, audio_root: str | Path | None = None, lookup: AudioLookup | None = None
) -> Annotations:
    """Boxes of one CSV table.

    Raises:
        AnnotationError: naming the table and row, for any problem in it.
    """
    path = Path(path)
    lookup = lookup if lookup is not None else AudioLookup(audio_root)
    _, columns, rows = read_header(path, REQUIRED)
    label_col = columns.require("label")
    low_col, high_col = columns.find("low_freq"), columns.find("high_freq")
    channel_col = columns.find("channel")
    boxes = []
    files: dict[str, None] = {}
    for row, cells in rows:
        file, start, end, info = located_interval(path, columns, row, cells, lookup)
        label = cells[label_col]
        if not label:
            raise AnnotationValueError(f"{where(path, row)}: empty label; name it")
        low = (
            optional_number(cells[low_col], path, row, "low_freq")
            if low_col is not None
            else math.nan
        )
        high = (
            optional_number(cells[high_col], path, row, "high_freq")
            if high_col is not None
            else math.nan
        )
        check_band(path, row, low, high, ("low_freq", "high_freq"))
        channel = None
        if channel_col is not None and cells[channel_col]:
            value = number(cells[channel_col], path, row, "channel")
            if value < 0 or value != int(value) or value >= info.n_channels:
                raise AnnotationValueError(
                    f"{where(path, row)}: channel must be 0 to {info.n_channels - 1} for {file} "
                    f"(counted from 0), got {cells[channel_col]!r}"
                )
            channel = int(value)
        boxes.append(Box(file, start, end, label, low, high, channel, str(path), row))
        files.setdefault(file, None)
    return Annotations(boxes_frame(boxes), {f: lookup.durations[f] for f in files})


def read_header(
    path: Path, required: tuple[str, ...]
) -> tuple[int, Columns, list[tuple[int, list[str]]]]:
    """The header (checked for `required` columns) and the data rows, each padded to its width."""
    records = csv_records(path)
    if not records:
        raise AnnotationFormatError(
            f"{path}: empty; the first row names the columns ({','.join(required)})"
        )
    header_row, header = records[0]
    if len(header) == 1:
        sep = next((s for s in ("\t", ";") if s in header[0]), None)
        if sep is not None:
            raise AnnotationFormatError(
                f"{where(path, header_row)}: not comma-separated (the header is separated by "
                f"{sep!r}); save the table as CSV with commas"
            )
    columns = Columns(path, header_row, header)
    for name in required:
        columns.require(name)
    width = len(header)
    rows = []
    for row, cells in records[1:]:
        if len(cells) > width and any(cells[width:]):
            raise AnnotationFormatError(
                f"{where(path, row)}: {len(cells)} cells but the header has {width} columns; "
                "quote cells that contain commas"
            )
        rows.append((row, (cells + [""] * width)[:width]))
    return header_row, columns, rows


def located_interval(
    path: Path, columns: Columns, row: int, cells: list[str], lookup: AudioLookup
) -> tuple[str, float, float, AudioInfo]:
    """The row's recording and its checked `start_time`-`end_time` (end clipped to the file)."""
    start = number(cells[columns.require("start_time")], path, row, "start_time")
    end = number(cells[columns.require("end_time")], path, row, "end_time")
    check_times(path, row, start, end, ("start_time", "end_time"))
    name = cells[columns.require("file")]
    if not name:
        raise AnnotationValueError(f"{where(path, row)}: empty 'file'")
    file = lookup.named(name, path, row)
    info = lookup.info(file, path, row)
    return file, start, fit_inside(path, row, file, end, info.duration_seconds), info
