"""Every output of a scan, assembled from the stored per-file parts in input order.

Scores are never kept in memory across files: each scanned file's part is read back, its events
derived with this run's thresholds and event rules, and handed to each output the user asked
for. Each output stages its file and commits it only at the end (see `bioclass.outputs.writers`),
the detections table last: its presence means every other output is complete. A failure on the
way discards what was staged, so an interrupted scan leaves no complete-looking table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bioclass.core.atomic import atomic_write_text, check_output_folder
from bioclass.core.errors import BioclassError
from bioclass.inference.score import FileScores
from bioclass.outputs import raven, writers
from bioclass.outputs.event import Event, events_frame
from bioclass.outputs.kaleidoscope import KaleidoscopeCsv
from bioclass.outputs.timestamps import parse_timestamp
from bioclass.scan import events as ev
from bioclass.scan.journal import load_part
from bioclass.scan.options import ScanOptions
from bioclass.scan.summary import ScanSummary
from bioclass.scan.work import FileOutcome


class Output(Protocol):
    """One output file (or folder), fed file by file."""

    name: str  # its key in ScanSummary.outputs and the manifest
    location: str  # where it went, as reported

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class DetectionsOutput:
    """The detections CSV (or stdout)."""

    name = "csv"

    def __init__(
        self,
        options: ScanOptions,
        scanned: list[FileOutcome],
        metadata: dict[str, Any] | None,
        parts: Path,
    ) -> None:
        self.location = "stdout" if str(options.out) == "-" else str(options.out)
        self.table = writers.DetectionsCsv(
            options.out,
            with_channel=options.channels != "mix",
            # The datetime column appears when any file's name carries a start time.
            with_datetime=any(parse_timestamp(o.path) for o in scanned),
            metadata=metadata,
            stage_dir=parts,
        )

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        self.table.add(events)

    def commit(self) -> None:
        self.table.commit()

    def discard(self) -> None:
        self.table.discard()


class RavenOutput:
    """One Raven selection table per scanned recording, each written whole as its file is done
    (like the Audacity labels); selections span the model's whole band."""

    name = "raven"

    def __init__(self, folder: Path, scanned: list[FileOutcome], sample_rate: int) -> None:
        self.location = str(folder)
        self.band_hz = (0.0, sample_rate / 2)
        self.targets = writers.per_recording_paths(
            folder, [o.path for o in scanned], ".selections.txt"
        )

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        if outcome.path in self.targets:
            text = raven.recording_table(str(outcome.path), events, self.band_hz)
            atomic_write_text(self.targets[outcome.path], text)

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


class RavenCombinedOutput:
    """One Raven table for all files in Raven's multi-file layout, and its list file
    (--raven-combined)."""

    name = "raven_combined"

    def __init__(self, paths: dict[str, Path], sample_rate: int) -> None:
        self.location = str(paths["selections"])
        self.table = writers.CombinedRavenTable(
            paths["selections"], paths["raven_list"], (0.0, sample_rate / 2)
        )

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        self.table.add(str(outcome.path), outcome.duration_s, events)

    def commit(self) -> None:
        self.table.commit()

    def discard(self) -> None:
        self.table.discard()


class AudacityOutput:
    """Two Audacity label tracks per scanned recording, the classes and the scores, each
    written whole as its file is done.

    The label files are independent (one per recording), so they are not staged: a complete
    file for each finished recording is what a resumed scan would write again.
    """

    name = "audacity"

    def __init__(self, paths: dict[str, Path], scanned: list[FileOutcome]) -> None:
        self.location = str(paths["audacity_dir"])
        files = [o.path for o in scanned]
        self.labels = writers.audacity_paths(paths["audacity_dir"], files)
        self.scores = writers.audacity_paths(paths["audacity_scores_dir"], files)

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        if outcome.path in self.labels:
            atomic_write_text(self.labels[outcome.path], writers.audacity_labels(events))
            atomic_write_text(self.scores[outcome.path], writers.audacity_scores(events))

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


class KaleidoscopeOutput:
    """The detections in the columns of Kaleidoscope's results table."""

    name = "kaleidoscope"

    def __init__(self, target: Path, scanned: list[FileOutcome]) -> None:
        self.location = str(target)
        self.table = KaleidoscopeCsv(target, [o.path for o in scanned])

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        self.table.add(outcome.path, events)

    def commit(self) -> None:
        self.table.commit()

    def discard(self) -> None:
        self.table.discard()


class ScoresOutput:
    """Every window's class scores (--scores), Parquet or CSV."""

    name = "scores"

    def __init__(self, target: Path, classes: list[str]) -> None:
        self.location = str(target)
        self.classes = classes
        self.matrix = writers.ScoreMatrix(target)

    def add(self, outcome: FileOutcome, scores: FileScores, events: list[Event]) -> None:
        for s in scores.streams:
            self.matrix.add(
                ev.score_matrix(
                    str(outcome.path), s.channel, s.starts_s, s.ends_s, s.scores, self.classes
                )
            )

    def commit(self) -> None:
        self.matrix.commit(self.classes)

    def discard(self) -> None:
        self.matrix.discard()


def check_output_folders(options: ScanOptions) -> None:
    """Before anything is scanned: one line and no work when an output cannot be written (a
    folder without permission, on a read-only or full disk; a score matrix format pyarrow is
    missing for); the temporary files a killed scan left in the folders are removed."""
    if options.scores_path is not None:
        writers.check_scores_path(options.scores_path)
    paths = writers.output_paths(options.out)
    # The detections table, Raven and Kaleidoscope tables, failed table and manifest share
    # --out's folder.
    check_output_folder(paths["csv"].parent)
    # Subfolders are checked only when they already exist (a resumed scan): a new one is made
    # by the first write in the folder just checked, and a scan refused by another's lock must
    # leave nothing behind.
    if paths["parts"].is_dir():
        check_output_folder(paths["parts"], "the scan's parts folder")
    folders = {
        "raven": [("raven_dir", "the Raven tables folder")],
        "audacity": [
            ("audacity_dir", "the Audacity labels folder"),
            ("audacity_scores_dir", "the Audacity scores folder"),
        ],
    }
    for fmt in options.formats:
        for key, what in folders.get(fmt, []):
            if paths[key].is_dir():
                check_output_folder(paths[key], what, recursive=True)
    if options.scores_path is not None:
        check_output_folder(options.scores_path.parent)


def open_outputs(
    options: ScanOptions,
    scanned: list[FileOutcome],
    detector: ev.Detector,
    sample_rate: int,
    metadata: dict[str, Any] | None,
) -> list[Output]:
    """The outputs `options` asks for, the detections table (when asked for) last."""
    paths = writers.output_paths(options.out)
    openers: list[Callable[[], Output]] = []
    if "raven" in options.formats:
        openers.append(lambda: RavenOutput(paths["raven_dir"], scanned, sample_rate))
    if options.raven_combined:
        openers.append(lambda: RavenCombinedOutput(paths, sample_rate))
    if "audacity" in options.formats:
        openers.append(lambda: AudacityOutput(paths, scanned))
    if "kaleidoscope" in options.formats:
        openers.append(lambda: KaleidoscopeOutput(paths["kaleidoscope"], scanned))
    if options.scores_path is not None:
        openers.append(lambda: ScoresOutput(options.scores_path, detector.classes))
    if "csv" in options.formats:
        openers.append(lambda: DetectionsOutput(options, scanned, metadata, paths["parts"]))
    outputs: list[Output] = []
    try:
        for open_output in openers:
            outputs.append(open_output())
    except BaseException:  # e.g. an unwritable folder: no temporary files left behind
        for output in outputs:
            output.discard()
        raise
    return outputs


def stored_scores(outcome: FileOutcome, parts: Path) -> FileScores:
    """A scanned file's scores, read back from its part (every one finite: checked)."""
    result = load_part(parts, outcome.key) if outcome.key else None
    if not isinstance(result, FileScores):
        raise BioclassError(
            f"the stored scores of {outcome.path} vanished from {parts} "
            "during the scan; re-run the same command"
        )
    for s in result.streams:
        # Scoring fails a file whose scores are not finite, and resuming re-scores such a part:
        # reaching here is a bug, and an empty score cell must never be written.
        if not np.isfinite(s.scores).all():
            raise BioclassError(
                f"internal error: the stored scores of {outcome.path} hold NaN/Inf "
                f"({parts}); nothing was written; please report this"
            )
    return result


def write_failed(path: Path, summary: ScanSummary) -> None:
    """The table of files that could not be scanned (header only when none failed)."""
    table = io.StringIO()
    writer = csv.DictWriter(table, ["file", "error"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary.failed)
    atomic_write_text(path, table.getvalue())
    summary.outputs["failed"] = str(path)


def write_outputs(
    outcomes: list[FileOutcome],
    detector: ev.Detector,
    options: ScanOptions,
    summary: ScanSummary,
    sample_rate: int,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Assemble every output from the stored parts, file by file, in input order.

    Adds the detections count, the output locations and (with `options.collect_events`) the
    events to `summary`.

    Args:
        outcomes: every file's outcome, in input order (failed ones are listed, not assembled).
        detector: classes, thresholds and background label to label windows with.
        options: formats, event rules and output paths.
        summary: the scan's summary so far (its failed files go to the failed table).
        sample_rate: the models' rate (the band of Raven selections).
        metadata: constant run-metadata columns for the detections CSV, or None.
    """
    parts = writers.output_paths(options.out)["parts"]
    scanned = [o for o in outcomes if o.error is None]
    outputs = open_outputs(options, scanned, detector, sample_rate, metadata)
    collected: list[Event] = []
    try:
        for outcome in scanned:
            scores = stored_scores(outcome, parts)
            events = ev.file_events(str(outcome.path), scores.streams, detector, options)
            summary.n_detections += len(events)
            for output in outputs:
                output.add(outcome, scores, events)
            if options.collect_events:
                collected += events
    except BaseException:
        for output in outputs:
            output.discard()
        raise
    write_failed(writers.output_paths(options.out)["failed"], summary)
    writers.commit_all([(output, output.commit) for output in outputs])
    for output in outputs:
        summary.outputs[output.name] = output.location
    if options.collect_events:
        summary.events = events_frame(collected)
