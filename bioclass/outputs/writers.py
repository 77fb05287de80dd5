"""Scan outputs, written file by file and renamed into place only when complete.

Every sink writes to a hidden temporary file beside its target and renames it at `close()`, so
an interrupted scan never leaves a half-written table that looks complete. Formats:

    CSV          file, start_time, end_time, label, score, mean_score, n_windows
                 [, channel][, datetime][, run metadata]
    Raven        selection table (tab-separated); one table for many files uses cumulative
                 begin times with `File Offset (s)` inside each file (Raven's multi-file mode)
    Audacity     one label track per recording: start<TAB>end<TAB>label (score)
    scores       dense window scores, Parquet or CSV: file, channel, start_time, end_time, classes
    failed       file, error
    manifest     JSON description of the run
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bioclass.core.atomic import StagedFile, atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.outputs.timestamps import parse_timestamp

RAVEN_COLUMNS = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Begin Path",
    "File Offset (s)",
    "Label",
    "Score",
]
TIME_DECIMALS = 4
SCORE_DECIMALS = 4


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where each output goes: beside `--out`, named from its stem (`-` = stdout, stem 'scan').

    Keys: csv, selections, audacity_dir, failed, manifest, parts, lock.
    """
    to_stdout = str(out) == "-"
    base = Path("scan") if to_stdout else Path(out)
    stem = base.with_suffix("") if base.suffix else base
    return {
        "csv": base,
        "selections": stem.with_name(stem.name + ".selections.txt"),
        "audacity_dir": stem.with_name(stem.name + ".audacity"),
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

    def add(self, events: pd.DataFrame) -> None:
        """Append one file's events (the event table of `bioclass.scan.events`)."""
        if events.empty:
            return
        table = events.copy()
        table["start_time"] = table["start_time"].round(TIME_DECIMALS)
        table["end_time"] = table["end_time"].round(TIME_DECIMALS)
        table["score"] = table["score"].round(SCORE_DECIMALS)
        table["mean_score"] = table["mean_score"].round(SCORE_DECIMALS)
        if "channel" in self.columns:
            table["channel"] = pd.array(table["channel"], dtype="Int64")
        if self.with_datetime:
            origin = parse_timestamp(table["file"].iloc[0])
            table["datetime"] = (
                [
                    (origin + timedelta(seconds=float(s))).isoformat(timespec="milliseconds")
                    for s in table["start_time"]
                ]
                if origin is not None
                else ""
            )
        for key, value in self.metadata.items():
            table[key] = value
        with self.staged.writing() as f:
            table[self.columns].to_csv(f, header=False, index=False, lineterminator="\n")

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


class RavenTable:
    """A Raven Pro selection table for all scanned files (cumulative times across files).

    Args:
        target: the `.selections.txt` path.
        low_freq_hz, high_freq_hz: the band every selection spans (the model sees all of it).
    """

    def __init__(self, target: Path, low_freq_hz: float, high_freq_hz: float) -> None:
        self.staged = StagedFile(target)
        self.low, self.high = low_freq_hz, high_freq_hz
        self.offset_s = 0.0  # begin time of the current file in Raven's concatenated timeline
        self.selection = 0
        with self.staged.writing() as f:
            f.write("\t".join(RAVEN_COLUMNS) + "\n")

    def add(self, file: str, duration_s: float, events: pd.DataFrame) -> None:
        """Append one file's events; every scanned file advances the timeline, even without."""
        with self.staged.writing() as f:
            self._write_rows(f, file, events)
        self.offset_s += duration_s

    def _write_rows(self, f: Any, file: str, events: pd.DataFrame) -> None:
        for row in events.itertuples(index=False):
            self.selection += 1
            channel = 1 if pd.isna(row.channel) else int(row.channel) + 1  # Raven counts from 1
            fields = [
                self.selection,
                "Spectrogram 1",
                channel,
                round(self.offset_s + row.start_time, TIME_DECIMALS),
                round(self.offset_s + row.end_time, TIME_DECIMALS),
                round(self.low, 1),
                round(self.high, 1),
                file,
                round(row.start_time, TIME_DECIMALS),
                row.label,
                round(row.score, SCORE_DECIMALS),
            ]
            f.write("\t".join(str(field) for field in fields) + "\n")

    def commit(self) -> None:
        self.staged.commit()

    def discard(self) -> None:
        self.staged.discard()


def audacity_paths(folder: Path, files: list[Path]) -> dict[Path, Path]:
    """One label file per recording: `folder/<relative folder>/<stem>.txt`.

    Sub-folders mirror the recordings' folders below their common parent, so recordings with the
    same name in different folders do not collide; same stem in one folder -> `<name>.txt`.
    """
    if not files:
        return {}
    resolved = [Path(f).resolve() for f in files]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    stems: dict[Path, int] = {}
    for p in resolved:
        key = p.parent / p.stem
        stems[key] = stems.get(key, 0) + 1
    out = {}
    for original, p in zip(files, resolved, strict=True):
        name = p.stem if stems[p.parent / p.stem] == 1 else p.name
        out[Path(original)] = folder / p.parent.relative_to(common) / f"{name}.txt"
    return out


def audacity_labels(events: pd.DataFrame) -> str:
    """Audacity label-track text: start, end, `label (score)` per line, tab-separated."""
    lines = []
    for row in events.sort_values("start_time", kind="mergesort").itertuples(index=False):
        text = f"{row.label} ({row.score:.2f})"
        if not pd.isna(row.channel):
            text += f" ch{int(row.channel)}"
        lines.append(f"{row.start_time:.4f}\t{row.end_time:.4f}\t{text}")
    return "".join(line + "\n" for line in lines)


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

    def commit(self, classes: list[str]) -> None:
        with self.staged.writing():
            self._finish(classes)
        self.staged.commit()

    def _finish(self, classes: list[str]) -> None:
        """The file's last bytes: the Parquet footer, or a CSV header when nothing came."""
        if self.parquet:
            if self.writer is None:  # nothing scanned: still a valid, empty table
                import pyarrow as pa
                import pyarrow.parquet as pq

                empty = pd.DataFrame(
                    {
                        "file": pd.Series(dtype=str),
                        "channel": pd.Series(dtype="Int64"),
                        "start_time": pd.Series(dtype=float),
                        "end_time": pd.Series(dtype=float),
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
                ",".join(["file", "channel", "start_time", "end_time", *classes]) + "\n"
            )

    def discard(self) -> None:
        if self.writer is not None:
            # Closing a half-written Parquet file may fail; it is deleted anyway.
            with contextlib.suppress(Exception):
                self.writer.close()
        self.staged.discard()


def check_scores_path(path: Path) -> None:
    """Fail early (before scanning) on an unsupported score-matrix format."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BioclassError(
                "--scores *.parquet needs pyarrow (pip install pyarrow), or give a .csv path"
            ) from None
    elif suffix != ".csv":
        raise BioclassError(f"--scores {path}: use a .parquet or .csv file name")


def commit_all(sinks: list[tuple[Any, Callable[[], None]]]) -> None:
    """Commit staged outputs in order; on failure discard the ones not yet committed."""
    for i, (_, commit) in enumerate(sinks):
        try:
            commit()
        except BaseException:
            for other, _ in sinks[i:]:
                other.discard()
            raise
