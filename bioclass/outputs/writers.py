"""Scan outputs, written file by file and renamed into place only when complete.

Every sink writes to a hidden temporary file beside its target and renames it at `close()`, so
an interrupted scan never leaves a half-written table that looks complete. Formats:

    CSV          file, start_time, end_time, label, score, mean_score, n_windows
                 [, channel][, datetime][, run metadata]
    Raven        one selection table per recording (`raven`); on request one combined table
                 in Raven's multi-file layout with its list file (`raven.CombinedRavenTable`)
    Audacity     two label tracks per recording: the classes, and the scores (`audacity`)
    Kaleidoscope the detections in Kaleidoscope's results-table columns (`kaleidoscope`)
    scores       dense window scores, Parquet or CSV: file, channel, start_time, end_time, classes
    failed       file, error
    manifest     JSON description of the run
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioclass.core.atomic import StagedFile, atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.outputs.audacity import audacity_labels, audacity_scores
from bioclass.outputs.naming import per_recording_paths
from bioclass.outputs.raven import RAVEN_COLUMNS, CombinedRavenTable
from bioclass.outputs.timestamps import start_datetimes

if TYPE_CHECKING:  # annotations only: the score matrix arrives as a pandas table (--scores)
    import pandas as pd

    from bioclass.outputs.event import Event

# Names other modules and tests reach through `writers`, the package's front door.
__all__ = [
    "RAVEN_COLUMNS",
    "CombinedRavenTable",
    "DetectionsCsv",
    "ScoreMatrix",
    "audacity_labels",
    "audacity_paths",
    "audacity_scores",
    "check_scores_path",
    "commit_all",
    "output_paths",
    "per_recording_paths",
    "write_manifest",
]

TIME_DECIMALS = 4
SCORE_DECIMALS = 4


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where each output goes: beside `--out`, named from its stem (`-` = stdout, stem 'scan').

    Keys: csv, raven_dir (one selection table per recording), selections and raven_list (the
    combined Raven table and its list file), audacity_dir and audacity_scores_dir (label and
    score tracks), kaleidoscope, failed, manifest, parts, lock.
    """
    to_stdout = str(out) == "-"
    base = Path("scan") if to_stdout else Path(out)
    stem = base.with_suffix("") if base.suffix else base
    return {
        "csv": base,
        "raven_dir": stem.with_name(stem.name + ".raven"),
        "selections": stem.with_name(stem.name + ".selections.txt"),
        "raven_list": stem.with_name(stem.name + ".selections.files.txt"),
        "audacity_dir": stem.with_name(stem.name + ".audacity"),
        "audacity_scores_dir": stem.with_name(stem.name + ".audacity-scores"),
        "kaleidoscope": stem.with_name(stem.name + ".kaleidoscope.csv"),
        "failed": stem.with_name(stem.name + ".failed.csv"),
        "manifest": stem.with_name(stem.name + ".manifest.json"),
        "parts": stem.with_name(stem.name + ".parts"),
        "lock": stem.with_name(stem.name + ".lock"),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """The run manifest as indented JSON."""
    atomic_write_text(path, json.dumps(manifest, indent=2, default=str) + "\n")


class DetectionsCsv:
    """The detections table, appended file by file, committed (or printed) at the end.

    Args:
        target: output path, or '-' for stdout (staged in `stage_dir`, printed on commit).
        with_channel: add the channel column (scans of separate channels).
        with_datetime: add absolute start times for files whose names carry one.
        metadata: constant run-metadata columns to append, or None.
        stage_dir: where a stdout table is staged.
    """

    def __init__(
        self,
        target: str | Path,
        with_channel: bool,
        with_datetime: bool,
        metadata: dict[str, Any] | None,
        stage_dir: Path,
    ) -> None:
        self.to_stdout = str(target) == "-"
        self.staged = StagedFile(stage_dir / "stdout.csv" if self.to_stdout else Path(target))
        self.columns = [
            "file",
            "start_time",
            "end_time",
            "label",
            "score",
            "mean_score",
            "n_windows",
        ]
        if with_channel:
            self.columns.append("channel")
        self.with_datetime = with_datetime
        if with_datetime:
            self.columns.append("datetime")
        self.metadata = metadata or {}
        self.columns += list(self.metadata)
        with self.staged.writing() as f:
            f.write(",".join(self.columns) + "\n")

    def add(self, events: Sequence[Event]) -> None:
        """Append one file's events (`bioclass.scan.events.Event`s)."""
        if not events:
            return
        # numpy's rounding, as the table has always been written (pandas' round is numpy's).
        starts = np.round([e.start_time for e in events], TIME_DECIMALS).tolist()
        ends = np.round([e.end_time for e in events], TIME_DECIMALS).tolist()
        scores = np.round([e.score for e in events], SCORE_DECIMALS).tolist()
        means = np.round([e.mean_score for e in events], SCORE_DECIMALS).tolist()
        when = start_datetimes(events[0].file, starts) if self.with_datetime else None
        with_channel = "channel" in self.columns
        extra = list(self.metadata.values())
        rows = []
        for k, e in enumerate(events):
            row = [e.file, starts[k], ends[k], e.label, scores[k], means[k], e.n_windows]
            if with_channel:
                row.append(e.channel)  # None (the mix) is written as an empty cell
            if when is not None:
                row.append(when[k])
            rows.append(row + extra)
        with self.staged.writing() as f:
            csv.writer(f, lineterminator="\n").writerows(rows)

    def commit(self) -> None:
        if self.to_stdout:
            with self.staged.writing() as f:
                f.close()
            with open(self.staged.tmp, encoding="utf-8") as f:
                shutil.copyfileobj(f, sys.stdout)
            sys.stdout.flush()
            self.staged.tmp.unlink(missing_ok=True)
        else:
            self.staged.commit()

    def discard(self) -> None:
        self.staged.discard()


def audacity_paths(folder: Path, files: list[Path]) -> dict[Path, Path]:
    """One label file per recording: `folder/<relative folder>/<stem>.txt` (see
    `per_recording_paths`)."""
    return per_recording_paths(folder, files, ".txt")


class ScoreMatrix:
    """Dense window scores, streamed to Parquet (pyarrow) or CSV by the target's suffix."""

    def __init__(self, target: Path) -> None:
        self.parquet = target.suffix.lower() in (".parquet", ".pq")
        self.staged = StagedFile(target, binary=self.parquet)
        self.writer: Any = None
        self.header = False

    def add(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        with self.staged.writing():
            self._add(frame)

    def _add(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.staged.handle, table.schema)
            self.writer.write_table(table)
        else:
            frame.to_csv(
                self.staged.handle, header=not self.header, index=False, lineterminator="\n"
            )
            self.header = True

    def commit(self, classes: list[str], text_columns: tuple[str, ...] = ()) -> None:
        """Finish and rename into place; `text_columns` (after the time columns, before the
        classes) shape the empty table written when nothing came."""
        with self.staged.writing():
            self._finish(classes, text_columns)
        self.staged.commit()

    def _finish(self, classes: list[str], text_columns: tuple[str, ...]) -> None:
        """The file's last bytes: the Parquet footer, or a CSV header when nothing came."""
        if self.parquet:
            if self.writer is None:  # nothing scanned: still a valid, empty table
                import pandas as pd
                import pyarrow as pa
                import pyarrow.parquet as pq

                empty = pd.DataFrame(
                    {
                        "file": pd.Series(dtype=str),
                        "channel": pd.Series(dtype="Int64"),
                        "start_time": pd.Series(dtype=float),
                        "end_time": pd.Series(dtype=float),
                        **{c: pd.Series(dtype=str) for c in text_columns},
                        **{c: pd.Series(dtype="float32") for c in classes},
                    }
                )
                pq.write_table(
                    pa.Table.from_pandas(empty, preserve_index=False), self.staged.handle
                )
            else:
                self.writer.close()
        elif not self.header:
            self.staged.handle.write(
                ",".join(["file", "channel", "start_time", "end_time", *text_columns, *classes])
                + "\n"
            )

    def discard(self) -> None:
        if self.writer is not None:
            # Closing a half-written Parquet file may fail; it is deleted anyway.
            with contextlib.suppress(Exception):
                self.writer.close()
        self.staged.discard()


def check_scores_path(path: Path, option: str = "--scores") -> None:
    """Fail early (before scanning) on an unsupported matrix format, or Parquet without pyarrow
    (`option` names the option in the message)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BioclassError(
                f"{option} {path}: writing Parquet needs pyarrow, which is not installed; "
                "give a .csv path instead (pandas, R and spreadsheets read it), "
                "or pip install pyarrow"
            ) from None
    elif suffix != ".csv":
        raise BioclassError(f"{option} {path}: use a .parquet or .csv file name")


def commit_all(sinks: list[tuple[Any, Callable[[], None]]]) -> None:
    """Commit staged outputs in order; on failure discard the ones not yet committed."""
    for i, (_, commit) in enumerate(sinks):
        try:
            commit()
        except BaseException:
            for other, _ in sinks[i:]:
                other.discard()
            raise
