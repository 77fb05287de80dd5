"""Outputs other programs read: per-recording Raven tables (and the combined one on request),
Audacity label and score tracks, the detections CSV's stable header, Kaleidoscope's columns, and
the embeddings' manifest, datetime column and last window."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import run_cli

from bioclass.outputs import raven, writers
from bioclass.outputs.event import Event
from bioclass.outputs.kaleidoscope import KALEIDOSCOPE_COLUMNS, KaleidoscopeCsv
from bioclass.synthetic.dataset import make_long_recording

# crowsetta is no dependency of bioclass: its check runs where BIOCLASS_CROWSETTA_PYTHON names
# the Python of an environment that has it (python3 -m venv V && V/bin/pip install crowsetta).
CROWSETTA_PYTHON = os.environ.get("BIOCLASS_CROWSETTA_PYTHON", "")

DETECTIONS_HEADER = ["file", "start_time", "end_time", "label", "score", "mean_score", "n_windows"]


def events(rows: list[tuple[float, float, str, float]], channel: int | None = None) -> list[Event]:
    return [
        Event("rec", channel, start, end, label, score, score, 1)
        for start, end, label, score in rows
    ]


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recordings with the same name in different folders, and one with a timestamp."""
    folder = tmp_path_factory.mktemp("season")
    rng = np.random.default_rng(12)
    for name, seconds in [("a/rec.wav", 6.0), ("b/rec.wav", 5.0), ("b/20240501_053000.wav", 4.5)]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        make_long_recording(folder / name, rng, seconds, 8000, 1, species=["harmonic", "pulses"])
    return folder


@pytest.fixture(scope="module")
def scanned(trained: Path, season: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "det.csv"
    code, output = run_cli(
        "scan",
        season,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--raven-combined",
        "--format",
        "csv",
        "--format",
        "audacity",
        "--format",
        "kaleidoscope",
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    return out


# --- Raven ---------------------------------------------------------------------------------


def test_one_raven_table_per_recording_at_file_times(scanned: Path, season: Path) -> None:
    detections = pd.read_csv(scanned)
    folder = scanned.parent / "det.raven"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.txt"))
    # Same name in two folders: the folders are mirrored, so nothing collides.
    assert names == [
        "a/rec.selections.txt",
        "b/20240501_053000.selections.txt",
        "b/rec.selections.txt",
    ]
    for name in ("a/rec", "b/rec", "b/20240501_053000"):
        recording = str((season / f"{name}.wav").resolve())
        table = pd.read_csv(folder / f"{name}.selections.txt", sep="\t")
        expected = detections[detections["file"] == recording]
        assert len(table) == len(expected) > 0
        assert list(table["Selection"]) == list(range(1, len(table) + 1))
        assert list(table["Begin Time (s)"]) == list(expected["start_time"])  # file times
        assert list(table["End Time (s)"]) == list(expected["end_time"])
        assert list(table["File Offset (s)"]) == list(expected["start_time"])
        assert list(table["Annotation"]) == list(expected["label"]) == list(table["Label"])
        assert set(table["Begin Path"]) == {recording}
        assert list(table["Score"]) == list(expected["score"])


def test_combined_raven_table_comes_with_its_list_file(scanned: Path) -> None:
    detections = pd.read_csv(scanned)
    combined = pd.read_csv(scanned.parent / "det.selections.txt", sep="\t")
    listed = (scanned.parent / "det.selections.files.txt").read_text().splitlines()
    assert listed == list(dict.fromkeys(detections["file"]))  # the scan's order
    assert list(combined.columns) == raven.RAVEN_COLUMNS
    # Begin Time = where the file starts in the sequence of listed files + time in the file.
    lengths = {f: sf.info(f).duration for f in listed}
    starts = dict(zip(listed, np.cumsum([0.0] + [lengths[f] for f in listed[:-1]]), strict=True))
    expected = [
        starts[f] + t for f, t in zip(detections["file"], detections["start_time"], strict=True)
    ]
    np.testing.assert_allclose(combined["Begin Time (s)"], expected, atol=1e-4)
    assert list(combined["File Offset (s)"]) == list(detections["start_time"])


def test_a_recording_without_detections_gets_a_valid_empty_table(tmp_path: Path) -> None:
    text = raven.recording_table("/x/quiet.wav", events([]), (0.0, 4000.0))
    (tmp_path / "quiet.selections.txt").write_text(text)
    table = pd.read_csv(tmp_path / "quiet.selections.txt", sep="\t")
    assert list(table.columns) == raven.RAVEN_COLUMNS and table.empty


def test_tabs_and_line_breaks_in_labels_and_paths_are_escaped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = events(
        [(0.0, 1.0, "tr\till", 0.9), (2.0, 3.0, "two\nlines", 0.8), (4.0, 5.0, "ok", 0.7)]
    )
    with caplog.at_level(logging.WARNING):
        text = raven.recording_table("/x/odd\tname.wav", rows, (0.0, 4000.0))
    path = tmp_path / "t.selections.txt"
    path.write_text(text)
    table = pd.read_csv(path, sep="\t")
    assert len(table) == 3 and list(table.columns) == raven.RAVEN_COLUMNS
    assert list(table["Annotation"]) == ["tr\\till", "two\\nlines", "ok"]
    assert set(table["Begin Path"]) == {"/x/odd\\tname.wav"}
    assert list(table["Score"]) == [0.9, 0.8, 0.7]
    assert "tab or line break" in caplog.text and "two\\nlines" in caplog.text
    labels = writers.audacity_labels(rows).splitlines()
    assert [line.split("\t")[2] for line in labels] == ["tr\\till", "two\\nlines", "ok"]


@pytest.mark.skipif(
    not CROWSETTA_PYTHON or not Path(CROWSETTA_PYTHON).exists(),
    reason="set BIOCLASS_CROWSETTA_PYTHON to a Python with crowsetta installed",
)
def test_crowsetta_reads_the_per_recording_table_at_file_times(scanned: Path) -> None:
    table = scanned.parent / "det.raven" / "b" / "rec.selections.txt"
    code = (
        "import sys, json, crowsetta\n"
        "annot = crowsetta.formats.bbox.Raven.from_file(sys.argv[1]).to_annot()\n"
        "print(json.dumps([[b.onset, b.offset, b.label] for b in annot.bboxes]))\n"
    )
    result = subprocess.run(
        [CROWSETTA_PYTHON, "-c", code, str(table)], capture_output=True, text=True, check=True
    )
    boxes = json.loads(result.stdout)
    expected = pd.read_csv(table, sep="\t")
    assert boxes == [
        [b, e, a]
        for b, e, a in zip(
            expected["Begin Time (s)"],
            expected["End Time (s)"],
            expected["Annotation"],
            strict=True,
        )
    ]
    assert max(b[1] for b in boxes) <= 5.0  # inside this 5 s recording, not a cumulative time


# --- Audacity --------------------------------------------------------------------------------


def test_audacity_labels_are_the_class_and_scores_a_second_track(
    scanned: Path, season: Path
) -> None:
    detections = pd.read_csv(scanned)
    recording = str((season / "a/rec.wav").resolve())
    expected = detections[detections["file"] == recording]
    names = ["start", "end", "text"]
    labels = pd.read_csv(scanned.parent / "det.audacity/a/rec.txt", sep="\t", names=names)
    scores = pd.read_csv(scanned.parent / "det.audacity-scores/a/rec.txt", sep="\t", names=names)
    assert list(labels["text"]) == list(expected["label"])  # exactly the class names
    assert set(labels["text"]) <= {"background", "harmonic", "pulses"}
    assert list(scores["start"]) == list(labels["start"]) == list(expected["start_time"])
    assert list(scores["end"]) == list(labels["end"])
    np.testing.assert_allclose(scores["text"], expected["score"], atol=0.005)


def test_audacity_score_track_names_the_channel_of_a_channel_scan() -> None:
    rows = events([(1.0, 2.0, "trill", 0.934)], channel=1)
    assert writers.audacity_labels(rows) == "1.0000\t2.0000\ttrill\n"
    assert writers.audacity_scores(rows) == "1.0000\t2.0000\t0.93 ch1\n"


# --- Detections CSV --------------------------------------------------------------------------


def test_detections_csv_header_is_stable(scanned: Path) -> None:
    header = scanned.read_text().splitlines()[0].split(",")
    # Readers select columns by these names: renaming one breaks them.
    assert header == [*DETECTIONS_HEADER, "datetime"]


def test_detections_csv_loads_in_one_line_with_every_label_a_string(tmp_path: Path) -> None:
    path = tmp_path / "det.csv"
    table = writers.DetectionsCsv(path, False, True, None, tmp_path)
    rows = events([(0.0, 1.0, "1", 0.9), (1.0, 2.0, "NA", 0.8), (2.0, 3.0, "null", 0.7)])
    table.add([e._replace(file="/x/20240501_053000.wav") for e in rows])
    table.add([e._replace(file="/x/no time, here.wav") for e in rows])
    table.commit()
    # The README's one line:
    loaded = pd.read_csv(path, dtype={"label": str}, keep_default_na=False, na_values=[""])
    assert list(loaded.columns) == [*DETECTIONS_HEADER, "datetime"]
    assert list(loaded["label"]) == ["1", "NA", "null"] * 2
    assert loaded["file"].iloc[3] == "/x/no time, here.wav"
    assert loaded["datetime"].iloc[:3].notna().all() and loaded["datetime"].iloc[3:].isna().all()
    assert loaded["start_time"].dtype == float


# --- Kaleidoscope ----------------------------------------------------------------------------


def test_kaleidoscope_table_has_kaleidoscopes_columns(scanned: Path, season: Path) -> None:
    detections = pd.read_csv(scanned)
    table = pd.read_csv(scanned.parent / "det.kaleidoscope.csv", keep_default_na=False)
    assert list(table.columns) == KALEIDOSCOPE_COLUMNS
    assert set(table["INDIR"]) == {str(season.resolve())}
    paths = [
        Path(i) / f / n
        for i, f, n in zip(table["INDIR"], table["FOLDER"], table["IN FILE"], strict=True)
    ]
    assert [str(p) for p in paths] == list(detections["file"])
    assert set(table["FOLDER"]) == {"a", "b"}
    assert list(table["OFFSET"]) == list(detections["start_time"])
    np.testing.assert_allclose(
        table["DURATION"], detections["end_time"] - detections["start_time"], atol=1e-4
    )
    assert list(table["AUTO ID"]) == list(detections["label"])
    assert set(table["CHANNEL"]) == {0} and set(table["MANUAL ID"]) == {""}


def test_kaleidoscope_dates_are_the_detections_moment_and_12_hours_earlier(
    tmp_path: Path,
) -> None:
    target = tmp_path / "k.csv"
    # An AudioMoth-style name: recording started 2024-05-01 23:59:30.
    recording = tmp_path / "AM01_20240501_235930.wav"
    table = KaleidoscopeCsv(target, [recording])
    table.add(recording, events([(10.0, 11.0, "owl", 0.9), (30.5, 31.0, "owl", 0.8)]))
    table.commit()
    loaded = pd.read_csv(target, keep_default_na=False, dtype=str)
    dates = ["DATE", "TIME", "HOUR", "DATE-12", "TIME-12", "HOUR-12"]
    assert loaded[dates].values.tolist() == [
        ["2024-05-01", "23:59:40", "23", "2024-05-01", "11:59:40", "11"],
        # Past midnight: the date turns, DATE-12 keeps the night's evening date.
        ["2024-05-02", "00:00:00", "0", "2024-05-01", "12:00:00", "12"],
    ]


def test_kaleidoscope_quotes_commas_and_leaves_folder_empty_at_the_top(tmp_path: Path) -> None:
    target = tmp_path / "k.csv"
    recording = tmp_path / "site 1, north.wav"
    table = KaleidoscopeCsv(target, [recording])
    table.add(recording, events([(1.5, 2.5, "trill", 0.9)], channel=1))
    table.commit()
    loaded = pd.read_csv(target, keep_default_na=False)
    assert loaded.iloc[0].to_dict() == {
        "INDIR": str(tmp_path.resolve()),
        "FOLDER": "",
        "IN FILE": "site 1, north.wav",
        "CHANNEL": 1,
        "OFFSET": 1.5,
        "DURATION": 1.0,
        **dict.fromkeys(["DATE", "TIME", "HOUR", "DATE-12", "TIME-12", "HOUR-12"], ""),
        "AUTO ID": "trill",
        "SCORE": 0.9,
        "MANUAL ID": "",
    }


# --- Embeddings ------------------------------------------------------------------------------


def test_embeddings_carry_a_manifest_datetime_and_no_stub_window(
    trained: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    rate = 8000
    # 3.04 s: at a 1 s window and hop the 4th window would hold 0.04 s of audio.
    sf.write(folder / "20240501_053000.wav", np.zeros(int(3.04 * rate), np.float32) + 0.01, rate)
    # 2.6 s: its last window holds 0.6 s, over half a window, and is kept.
    sf.write(folder / "plain.wav", np.zeros(int(2.6 * rate), np.float32) + 0.01, rate)
    # Shorter than half a window: its one window is kept.
    sf.write(folder / "short.wav", np.zeros(int(0.3 * rate), np.float32) + 0.01, rate)
    out = tmp_path / "emb.csv"
    code, output = run_cli("embed", trained / "model.pt", folder, "--out", out, "--window", "1")
    assert code == 0, output
    table = pd.read_csv(out)
    assert list(table.columns[:5]) == ["file", "channel", "start_time", "end_time", "datetime"]
    assert table.columns[5] == "e000"
    by_file = {Path(f).name: rows for f, rows in table.groupby("file")}
    assert list(by_file["20240501_053000.wav"]["start_time"]) == [0.0, 1.0, 2.0]
    assert list(by_file["plain.wav"]["end_time"]) == [1.0, 2.0, 2.6]
    assert list(by_file["short.wav"]["end_time"]) == [0.3]
    stamped = by_file["20240501_053000.wav"]["datetime"]
    assert list(stamped) == [
        "2024-05-01T05:30:00.000",
        "2024-05-01T05:30:01.000",
        "2024-05-01T05:30:02.000",
    ]
    assert by_file["plain.wav"]["datetime"].isna().all()
    manifest = json.loads((tmp_path / "emb.manifest.json").read_text())
    assert len(manifest["models"][0]["sha256"]) == 64
    assert manifest["window_seconds"] == 1.0 and manifest["hop_seconds"] == 1.0
    assert manifest["windows"] == len(table) == 3 + 3 + 1
    assert manifest["min_last_window_seconds"] == 0.5
    assert manifest["dim"] == table.shape[1] - 5
    for key in ("bioclass_version", "torch_version", "python", "created", "sample_rate", "mode"):
        assert key in manifest
    assert manifest["outputs"]["embeddings"] == str(out)


def test_embed_to_parquet_without_pyarrow_says_what_to_do(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    code, output = run_cli("embed", trained / "model.pt", tmp_path, "--out", tmp_path / "e.parquet")
    assert code == 1
    line = " ".join(output.split())
    assert "needs pyarrow" in line and ".csv" in line and "pip install pyarrow" in line
    assert not list(tmp_path.iterdir())
