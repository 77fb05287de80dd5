"""Detections as a CSV that Wildlife Acoustics' Kaleidoscope reads as its own results table.

What this is based on: BirdNET-Analyzer's `--rtype kaleidoscope` table (its source, read
for this: INDIR, FOLDER, IN FILE, OFFSET, DURATION, then its own columns), and the names of the
columns of Kaleidoscope Pro's own results table `id.csv` (INDIR, OUTDIR, FOLDER, IN FILE,
CHANNEL, OFFSET, DURATION, ..., AUTO ID, ..., MANUAL ID), which are not checked against the
program itself here (no copy was at hand). Here:
INDIR (the deepest folder holding every recording), FOLDER (the sub-folder below it, empty for
INDIR itself), IN FILE (the recording's name), CHANNEL (0 = left or mono mix, 1 = right, ...),
OFFSET and DURATION (seconds into the recording), DATE, TIME, HOUR and DATE-12, TIME-12, HOUR-12
(when the detection starts, from the start time in the recording's file name, and the same 12
hours earlier, so that one night falls on one date; empty when the name carries no time: the
columns of id.csv, between DURATION and AUTO ID as there), AUTO ID (the class), SCORE, and MANUAL
ID (left empty, for the reviewer's verdict).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from bioclass.core.atomic import StagedFile
from bioclass.outputs.event import Event
from bioclass.outputs.timestamps import parse_timestamp

# Kaleidoscope's own names: the moment, and the moment 12 hours earlier (a night's date).
DATE_COLUMNS = ["DATE", "TIME", "HOUR", "DATE-12", "TIME-12", "HOUR-12"]
KALEIDOSCOPE_COLUMNS = [
    "INDIR",
    "FOLDER",
    "IN FILE",
    "CHANNEL",
    "OFFSET",
    "DURATION",
    *DATE_COLUMNS,
    "AUTO ID",
    "SCORE",
    "MANUAL ID",
]
DECIMALS = 4


def date_columns(origin: datetime | None, offset_s: float) -> list[str | int]:
    """DATE, TIME (whole seconds), HOUR of the moment `offset_s` seconds after `origin`, then
    the same 12 hours earlier; six empty strings when `origin` is unknown."""
    if origin is None:
        return ["" for _ in DATE_COLUMNS]
    moment = origin + timedelta(seconds=offset_s)
    values: list[str | int] = []
    for when in (moment, moment - timedelta(hours=12)):
        values += [when.strftime("%Y-%m-%d"), when.strftime("%H:%M:%S"), when.hour]
    return values


def input_folder(files: list[Path]) -> Path:
    """Kaleidoscope's INDIR: the deepest folder holding every recording."""
    if not files:
        return Path()
    return Path(os.path.commonpath([str(Path(f).resolve().parent) for f in files]))


class KaleidoscopeCsv:
    """The Kaleidoscope table, appended recording by recording, renamed into place at the end.

    Args:
        target: the `.kaleidoscope.csv` path.
        files: every recording that will be added (INDIR is their common folder).
    """

    def __init__(self, target: Path, files: list[Path]) -> None:
        self.staged = StagedFile(target)
        self.indir = input_folder(files)
        with self.staged.writing() as f:
            csv.writer(f, lineterminator="\n").writerow(KALEIDOSCOPE_COLUMNS)

    def add(self, file: Path, events: Sequence[Event]) -> None:
        path = Path(file).resolve()
        folder = path.parent.relative_to(self.indir).as_posix()
        origin = parse_timestamp(path)  # as the detections CSV's datetime column
        rows = []
        for row in events:
            rows.append(
                [
                    str(self.indir),
                    "" if folder == "." else folder,
                    path.name,
                    0 if row.channel is None else int(row.channel),
                    round(float(row.start_time), DECIMALS),
                    round(float(row.end_time - row.start_time), DECIMALS),
                    *date_columns(origin, float(row.start_time)),
                    row.label,
                    round(float(row.score), DECIMALS),
                    "",
                ]
            )
        if rows:
            with self.staged.writing() as f:
                csv.writer(f, lineterminator="\n").writerows(rows)

    def commit(self) -> None:
        self.staged.commit()

    def discard(self) -> None:
        self.staged.discard()
