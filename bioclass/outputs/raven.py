"""Raven Pro selection tables: one per recording (the default), or one combined table for
Raven's multi-file mode with the list file that opens the same files in the same order.

Per recording (as BirdNET-Analyzer writes them): `Begin Time (s)` is the time in that recording,
which is what crowsetta and OpenSoundscape read. Combined: `Begin Time (s)` counts from the
start of the first file as if the files were played one after another, and `File Offset (s)` is
the time inside `Begin Path`; only Raven itself reads that layout, so it is written on request.
`Annotation` (the column crowsetta and OpenSoundscape look for) and `Label` both hold the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bioclass.core.atomic import StagedFile, atomic_write_text
from bioclass.outputs.event import Event
from bioclass.outputs.tsv import tsv_field

# The columns every Raven selection table starts with (a box: where and when it is).
RAVEN_BOX_COLUMNS = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
]
RAVEN_COLUMNS = [
    *RAVEN_BOX_COLUMNS,
    "Begin Path",
    "File Offset (s)",
    "Annotation",
    "Label",
    "Score",
]
HEADER = "\t".join(RAVEN_COLUMNS) + "\n"
TIME_DECIMALS = 4
SCORE_DECIMALS = 4


def selection_lines(
    events: Sequence[Event],
    path: str,
    band_hz: tuple[float, float],
    timeline_s: float = 0.0,
    first_selection: int = 1,
) -> list[str]:
    """One line per event (numbered from `first_selection`); `timeline_s` is where the
    recording starts in Raven's timeline (0 for a table of its own)."""
    lines = []
    begin_path = tsv_field(path, "file path")
    for k, row in enumerate(events):
        channel = 1 if row.channel is None else int(row.channel) + 1  # Raven counts from 1
        label = tsv_field(row.label, "label")
        fields = [
            first_selection + k,
            "Spectrogram 1",
            channel,
            round(timeline_s + row.start_time, TIME_DECIMALS),
            round(timeline_s + row.end_time, TIME_DECIMALS),
            round(band_hz[0], 1),
            round(band_hz[1], 1),
            begin_path,
            round(row.start_time, TIME_DECIMALS),
            label,
            label,
            round(row.score, SCORE_DECIMALS),
        ]
        lines.append("\t".join(str(field) for field in fields) + "\n")
    return lines


def recording_table(path: str, events: Sequence[Event], band_hz: tuple[float, float]) -> str:
    """The selection table of one recording: the header alone when nothing was detected."""
    return HEADER + "".join(selection_lines(events, path, band_hz))


class CombinedRavenTable:
    """One table for all scanned files in Raven's multi-file layout, and its list file.

    Args:
        target: the `.selections.txt` path.
        list_target: the list file (one recording per line, in the table's order), which Raven
            opens as the file sequence the cumulative times refer to.
        band_hz: the band every selection spans (the model sees all of it).
    """

    def __init__(self, target: Path, list_target: Path, band_hz: tuple[float, float]) -> None:
        self.staged = StagedFile(target)
        self.list_target = list_target
        self.band_hz = band_hz
        self.timeline_s = 0.0  # begin time of the current file in Raven's concatenated timeline
        self.selection = 0
        self.files: list[str] = []
        with self.staged.writing() as f:
            f.write(HEADER)

    def add(self, file: str, duration_s: float, events: Sequence[Event]) -> None:
        """Append one file's events; every scanned file advances the timeline, even without."""
        with self.staged.writing() as f:
            self._write(f, file, events)
        self.timeline_s += duration_s
        self.files.append(file)

    def _write(self, f: IO, file: str, events: Sequence[Event]) -> None:
        lines = selection_lines(events, file, self.band_hz, self.timeline_s, self.selection + 1)
        f.write("".join(lines))
        self.selection += len(lines)

    def commit(self) -> None:
        """The list file first, then the table: a table on disk always has its list."""
        atomic_write_text(
            self.list_target, "".join(tsv_field(f, "file path") + "\n" for f in self.files)
        )
        self.staged.commit()

    def discard(self) -> None:
        self.staged.discard()
