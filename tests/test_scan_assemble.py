"""A scan's outputs assembled from stored parts, without a model: the exact rows of every format,
and no complete-looking detections table when assembly or a commit fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioclass.core.errors import BioclassError
from bioclass.inference.score import FileScores, StreamScores
from bioclass.outputs import writers
from bioclass.scan.assemble import write_outputs
from bioclass.scan.events import Detector
from bioclass.scan.journal import save_result
from bioclass.scan.options import ScanOptions
from bioclass.scan.summary import ScanSummary
from bioclass.scan.work import FileOutcome

CLASSES = ["background", "bird", "frog"]
DETECTOR = Detector(CLASSES, np.array([0.5, 0.5, 0.6]), "background")
SAMPLE_RATE = 8000


def _stored(
    parts: Path, path: Path, key: str, scores: list[list[float]], duration_s: float
) -> FileOutcome:
    """Store one file's scores (1 s windows, 0.5 s hop) as a part; its outcome as counted."""
    n = len(scores)
    starts = np.arange(n) * 0.5
    result = FileScores(
        [
            StreamScores(
                None,
                starts,
                np.minimum(starts + 1.0, duration_s),
                np.asarray(scores, dtype=np.float32),
                duration_s,
            )
        ]
    )
    save_result(parts, key, result)
    return FileOutcome(path, key, result=result).light()


@pytest.fixture
def scanned(tmp_path: Path) -> tuple[ScanOptions, list[FileOutcome], ScanSummary]:
    """Two scanned files (one named with its start time, one in a sub-folder) and one failure."""
    options = ScanOptions(
        out=tmp_path / "out" / "det.csv",
        formats=("csv", "raven", "audacity", "kaleidoscope"),
        raven_combined=True,
        scores_path=tmp_path / "out" / "scores.csv",
    )
    parts = writers.output_paths(options.out)["parts"]
    audio = tmp_path / "audio"
    outcomes = [
        _stored(
            parts,
            audio / "rec_20240501_053000.wav",
            "a",
            [
                [0.1, 0.8, 0.1],  # bird
                [0.2, 0.7, 0.1],  # bird: merges with the window before
                [0.9, 0.05, 0.05],  # background: no detection
                [0.1, 0.2, 0.7],  # frog (its window is cut at the end of the file)
            ],
            duration_s=2.2,
        ),
        FileOutcome(audio / "broken.wav", None, error="broken.wav: cannot decode"),
        _stored(
            parts,
            audio / "site" / "plain.wav",
            "b",
            [
                [0.3, 0.3, 0.4],  # frog below its 0.6 threshold: no detection
                [0.2, 0.1, 0.7],  # frog
            ],
            duration_s=1.4,
        ),
    ]
    summary = ScanSummary(n_files=len(outcomes))
    for outcome in outcomes:
        summary.count(outcome)
    return options, outcomes, summary


def test_outputs_are_assembled_from_stored_parts(scanned, tmp_path: Path) -> None:
    options, outcomes, summary = scanned
    write_outputs(outcomes, DETECTOR, options, summary, SAMPLE_RATE)
    out = tmp_path / "out"
    a = tmp_path / "audio" / "rec_20240501_053000.wav"
    b = tmp_path / "audio" / "site" / "plain.wav"
    assert (out / "det.csv").read_text().splitlines() == [
        "file,start_time,end_time,label,score,mean_score,n_windows,datetime",
        f"{a},0.0,1.5,bird,0.8,0.75,2,2024-05-01T05:30:00.000",
        f"{a},1.5,2.2,frog,0.7,0.7,1,2024-05-01T05:30:01.500",
        f"{b},0.5,1.4,frog,0.7,0.7,1,",  # no start time in its name: no datetime
    ]
    # One Raven table per recording, at file times (folders mirrored below the common one).
    header = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tBegin Path\tFile Offset (s)\tAnnotation\tLabel\tScore"
    )
    tables = out / "det.raven"
    assert (tables / "rec_20240501_053000.selections.txt").read_text().splitlines() == [
        header,
        f"1\tSpectrogram 1\t1\t0.0\t1.5\t0.0\t4000.0\t{a}\t0.0\tbird\tbird\t0.8",
        f"2\tSpectrogram 1\t1\t1.5\t2.2\t0.0\t4000.0\t{a}\t1.5\tfrog\tfrog\t0.7",
    ]
    assert (tables / "site" / "plain.selections.txt").read_text().splitlines() == [
        header,
        f"1\tSpectrogram 1\t1\t0.5\t1.4\t0.0\t4000.0\t{b}\t0.5\tfrog\tfrog\t0.7",
    ]
    # Raven's multi-file timeline: the second file's selections start after the first file.
    assert (out / "det.selections.txt").read_text().splitlines() == [
        header,
        f"1\tSpectrogram 1\t1\t0.0\t1.5\t0.0\t4000.0\t{a}\t0.0\tbird\tbird\t0.8",
        f"2\tSpectrogram 1\t1\t1.5\t2.2\t0.0\t4000.0\t{a}\t1.5\tfrog\tfrog\t0.7",
        f"3\tSpectrogram 1\t1\t2.7\t3.6\t0.0\t4000.0\t{b}\t0.5\tfrog\tfrog\t0.7",
    ]
    assert (out / "det.selections.files.txt").read_text() == f"{a}\n{b}\n"
    labels = out / "det.audacity"
    assert sorted(p.relative_to(labels).as_posix() for p in labels.rglob("*.txt")) == [
        "rec_20240501_053000.txt",
        "site/plain.txt",
    ]
    assert (labels / "rec_20240501_053000.txt").read_text() == (
        "0.0000\t1.5000\tbird\n1.5000\t2.2000\tfrog\n"
    )
    assert (labels / "site" / "plain.txt").read_text() == "0.5000\t1.4000\tfrog\n"
    scores = out / "det.audacity-scores"
    assert (scores / "rec_20240501_053000.txt").read_text() == (
        "0.0000\t1.5000\t0.80\n1.5000\t2.2000\t0.70\n"
    )
    assert (scores / "site" / "plain.txt").read_text() == "0.5000\t1.4000\t0.70\n"
    indir = (tmp_path / "audio").resolve()
    assert (out / "det.kaleidoscope.csv").read_text().splitlines() == [
        "INDIR,FOLDER,IN FILE,CHANNEL,OFFSET,DURATION,DATE,TIME,HOUR,DATE-12,TIME-12,HOUR-12,"
        "AUTO ID,SCORE,MANUAL ID",
        # The file name's start time plus OFFSET, and the same 12 hours earlier; a name
        # without a time leaves them empty.
        f"{indir},,rec_20240501_053000.wav,0,0.0,1.5,2024-05-01,05:30:00,5,2024-04-30,17:30:00,17,"
        "bird,0.8,",
        f"{indir},,rec_20240501_053000.wav,0,1.5,0.7,2024-05-01,05:30:01,5,2024-04-30,17:30:01,17,"
        "frog,0.7,",
        f"{indir},site,plain.wav,0,0.5,0.9,,,,,,,frog,0.7,",
    ]
    assert (out / "det.failed.csv").read_text() == (
        f"file,error\n{tmp_path / 'audio' / 'broken.wav'},broken.wav: cannot decode\n"
    )
    assert (out / "scores.csv").read_text().splitlines() == [
        "file,channel,start_time,end_time,background,bird,frog",
        f"{a},,0.0,1.0,0.1,0.8,0.1",
        f"{a},,0.5,1.5,0.2,0.7,0.1",
        f"{a},,1.0,2.0,0.9,0.05,0.05",
        f"{a},,1.5,2.2,0.1,0.2,0.7",
        f"{b},,0.0,1.0,0.3,0.3,0.4",
        f"{b},,0.5,1.4,0.2,0.1,0.7",
    ]
    assert summary.n_detections == 3
    assert list(summary.outputs) == [
        "failed",
        "raven",
        "raven_combined",
        "audacity",
        "kaleidoscope",
        "scores",
        "csv",
    ]
    assert summary.outputs["csv"] == str(out / "det.csv")


def test_unmerged_windows_and_collected_events(scanned, tmp_path: Path) -> None:
    options, outcomes, summary = scanned
    options = ScanOptions(out=options.out, merge=False, keep_background=True, collect_events=True)
    write_outputs(outcomes, DETECTOR, options, summary, SAMPLE_RATE)
    rows = (tmp_path / "out" / "det.csv").read_text().splitlines()
    a = tmp_path / "audio" / "rec_20240501_053000.wav"
    assert rows[:5] == [
        "file,start_time,end_time,label,score,mean_score,n_windows,datetime",
        f"{a},0.0,1.0,bird,0.8,0.8,1,2024-05-01T05:30:00.000",
        f"{a},0.5,1.5,bird,0.7,0.7,1,2024-05-01T05:30:00.500",
        f"{a},1.0,2.0,background,0.9,0.9,1,2024-05-01T05:30:01.000",
        f"{a},1.5,2.2,frog,0.7,0.7,1,2024-05-01T05:30:01.500",
    ]
    assert len(rows) == 1 + 5 and summary.n_detections == 5
    assert list(summary.events["label"]) == ["bird", "bird", "background", "frog", "frog"]
    assert not (tmp_path / "out" / "det.selections.txt").exists()  # csv only


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_failed_commit_leaves_no_detections_table(
    scanned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, outcomes, summary = scanned

    def full_disk(self, classes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.ScoreMatrix, "commit", full_disk)
    with pytest.raises(OSError):
        write_outputs(outcomes, DETECTOR, options, summary, SAMPLE_RATE)
    out = tmp_path / "out"
    assert not (out / "det.csv").exists(), "the detections table means: everything is complete"
    assert _leftovers(out) == []  # the staged detections table was discarded too
    assert "csv" not in summary.outputs


def test_vanished_part_stops_assembly_without_outputs(scanned, tmp_path: Path) -> None:
    options, outcomes, summary = scanned
    (writers.output_paths(options.out)["parts"] / "b.npz").unlink()
    with pytest.raises(BioclassError, match="vanished"):
        write_outputs(outcomes, DETECTOR, options, summary, SAMPLE_RATE)
    out = tmp_path / "out"
    assert not (out / "det.csv").exists() and not (out / "det.selections.txt").exists()
    assert not (out / "scores.csv").exists() and _leftovers(out) == []
