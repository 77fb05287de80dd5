"""End-to-end `bioclass scan`: outputs, robustness to broken files, exact resume, ensembles."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli, run_cli_streams

from bioclass.checkpoint import checkpoint_info, read_checkpoint
from bioclass.synthetic.dataset import make_long_recording


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three timestamped recordings with calls at known times."""
    folder = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(5)
    for i, name in enumerate(
        ["20240501_053000.wav", "SMM01234_20240501_060000.flac", "site_b/20240502_000000.WAV"]
    ):
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        truth = make_long_recording(
            path, rng, 12.0 + 4 * i, 8000, n_calls=3, species=["harmonic", "pulses"]
        )
        truth.to_csv(path.with_suffix(".truth.csv"), index=False)
    return folder


def scan(*args: object) -> tuple[int, str]:
    return run_cli("scan", *args)


def test_scan_writes_csv_raven_audacity_and_manifest(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "detections.csv"
    code, output = scan(
        recordings,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--format",
        "csv",
        "--format",
        "raven",
        "--format",
        "audacity",
        "--keep-background",
        "--threshold",
        "0.0",
    )
    assert code == 0, output
    table = pd.read_csv(out)
    assert list(table.columns[:5]) == ["file", "start_time", "end_time", "label", "score"]
    assert set(table["file"]) == {
        str(p.resolve()) for p in recordings.rglob("*") if p.suffix.lower() in (".wav", ".flac")
    }
    # Timestamped names give absolute times: AudioMoth and Song Meter conventions.
    first = table[table["file"].str.endswith("20240501_053000.wav")].iloc[0]
    assert pd.Timestamp(first["datetime"]) == pd.Timestamp("2024-05-01 05:30:00") + pd.Timedelta(
        seconds=float(first["start_time"])
    )
    # With --keep-background and threshold 0 every window is labelled: the whole file is covered.
    for _file, rows in table.groupby("file"):
        assert rows["start_time"].min() == 0.0
    # One Raven table per recording, at file times; their rows together are the detections.
    tables = sorted((tmp_path / "detections.raven").rglob("*.selections.txt"))
    assert [str(p.relative_to(tmp_path / "detections.raven")) for p in tables] == [
        "20240501_053000.selections.txt",
        "SMM01234_20240501_060000.selections.txt",
        "site_b/20240502_000000.selections.txt",
    ]
    raven = pd.concat([pd.read_csv(p, sep="\t") for p in tables], ignore_index=True)
    assert list(raven.columns) == [
        "Selection",
        "View",
        "Channel",
        "Begin Time (s)",
        "End Time (s)",
        "Low Freq (Hz)",
        "High Freq (Hz)",
        "Begin Path",
        "File Offset (s)",
        "Annotation",
        "Label",
        "Score",
    ]
    assert len(raven) == len(table)
    ordered = table.sort_values(["file", "start_time"], kind="mergesort")
    raven = raven.sort_values(["Begin Path", "Begin Time (s)"], kind="mergesort")
    assert list(raven["Begin Time (s)"]) == list(ordered["start_time"])
    assert list(raven["Annotation"]) == list(ordered["label"]) == list(raven["Label"])
    assert not (tmp_path / "detections.selections.txt").exists()  # only with --raven-combined
    audacity = sorted((tmp_path / "detections.audacity").rglob("*.txt"))
    assert len(audacity) == 3
    manifest = json.loads((tmp_path / "detections.manifest.json").read_text())
    assert manifest["files_scanned"] == 3 and manifest["files_failed"] == 0
    assert manifest["classes"] == ["background", "harmonic", "pulses"]
    assert len(manifest["models"][0]["sha256"]) == 64
    assert manifest["audio_hours"] == pytest.approx((12 + 16 + 20) / 3600, rel=1e-3)


def test_broken_files_are_listed_and_the_scan_goes_on(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "season"
    shutil.copytree(recordings, folder)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.flac").write_text("not audio at all")
    good = sf.read(folder / "20240501_053000.wav")[0]
    sf.write(folder / "truncated.wav", good, 8000)
    with open(folder / "truncated.wav", "r+b") as f:  # header promises more data than there is
        f.truncate(os.path.getsize(folder / "truncated.wav") // 3)
    sf.write(folder / "short.wav", good[:2000], 8000)  # 0.25 s: shorter than a 1 s window
    out = tmp_path / "det.csv"
    code, output = scan(
        folder,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    failed = pd.read_csv(tmp_path / "det.failed.csv")
    assert {Path(f).name for f in failed["file"]} == {"empty.wav", "notes.flac"}
    assert failed["error"].str.len().gt(0).all()
    table = pd.read_csv(out)
    short = table[table["file"].str.endswith("short.wav")]
    assert len(short) == 1 and short["end_time"].iloc[0] == pytest.approx(0.25)
    assert "2 file(s) could not be read" in output

    code, output = scan(
        folder, "--model", trained / "model.pt", "--out", tmp_path / "x.csv", "--max-failures", "1"
    )
    assert code == 1
    assert "stopped" in output


def test_interrupted_scan_resumes_to_identical_output(
    trained: Path, recordings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained / "model.pt"
    reference = tmp_path / "reference.csv"
    code, output = scan(recordings, "--model", model, "--out", reference, "--threshold", "0.2")
    assert code == 0, output

    import bioclass.scan.runner as runner

    real = runner.score_file
    calls = []

    def interrupt_on_second_file(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "score_file", interrupt_on_second_file)
    out = tmp_path / "resumed.csv"
    code, output = scan(recordings, "--model", model, "--out", out, "--threshold", "0.2")
    assert code == 130
    assert not out.exists(), "an interrupted scan must not leave a complete-looking CSV"
    monkeypatch.setattr(runner, "score_file", real)

    code, output = scan(recordings, "--model", model, "--out", out, "--threshold", "0.2")
    assert code == 0, output
    assert "1 from an earlier run" in output
    assert out.read_text() == reference.read_text()


def test_killed_scan_resumes_to_identical_output(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        for src in sorted(recordings.rglob("*.wav")) + sorted(recordings.rglob("*.flac")):
            shutil.copy(src, folder / f"{i}_{src.name}")
    model = trained / "model.pt"
    command = [
        sys.executable,
        "-m",
        "bioclass",
        "scan",
        str(folder),
        "--model",
        str(model),
        "--mode",
        "exact",
        "--batch-size",
        "1",
    ]
    reference = tmp_path / "reference.csv"
    subprocess.run([*command, "--out", str(reference)], check=True, capture_output=True)

    out = tmp_path / "killed.csv"
    proc = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    parts = tmp_path / "killed.parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done, total = len(list(parts.glob("*.npz"))), len(list(folder.iterdir()))
    assert 2 <= n_done < total, "the kill should land mid-scan"
    assert not out.exists()
    done = subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, text=True)
    assert "from an earlier run" in done.stderr
    # The count from the manifest: the summary table's text wraps with the terminal's width.
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert (manifest["files_resumed"], manifest["files_scanned"]) == (n_done, total - n_done)
    assert out.read_text() == reference.read_text()


def test_exact_and_fast_modes_agree_on_detections(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "fast.csv", tmp_path / "exact.csv"
    for mode, out in (("fast", a), ("exact", b)):
        code, output = scan(
            recordings,
            "--model",
            trained / "model.pt",
            "--out",
            out,
            "--mode",
            mode,
            "--scores",
            out.with_suffix(".parquet"),
        )
        assert code == 0, output
    fast = pd.read_parquet(a.with_suffix(".parquet"))
    exact = pd.read_parquet(b.with_suffix(".parquet"))
    assert len(fast) == len(exact)
    classes = ["background", "harmonic", "pulses"]
    assert np.abs(fast[classes].to_numpy() - exact[classes].to_numpy()).max() < 0.2


def test_fast_mode_scans_exactly_when_windows_do_not_overlap(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    """At hop = window fast mode has nothing to share: the scan runs exact mode, says so, and its
    scores are exact mode's to the last digit."""
    window = checkpoint_info(read_checkpoint(trained / "model.pt")).window_seconds
    scores, logs = {}, {}
    for mode in ("fast", "exact"):
        out = tmp_path / f"{mode}.csv"
        code, output = scan(
            recordings, "--model", trained / "model.pt", "--out", out, "--mode", mode,
            "--hop", str(window), "--scores", out.with_suffix(".parquet"), "-v",
        )  # fmt: skip
        assert code == 0, output
        manifest = json.loads(out.with_suffix(".manifest.json").read_text())
        assert manifest["mode"] == "exact"
        scores[mode], logs[mode] = pd.read_parquet(out.with_suffix(".parquet")), output
    assert "windows do not overlap at this hop: scanning in exact mode" in logs["fast"]
    assert "would blur windows" not in logs["fast"]  # the reason is the hop, not the window
    pd.testing.assert_frame_equal(scores["fast"], scores["exact"])


def test_stdout_output_and_thresholds_override(
    trained: Path, recordings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # with --out -, the side files go to ./scan.*
    code, stdout, stderr = run_cli_streams(
        "scan",
        recordings / "20240501_053000.wav",
        "--model",
        trained / "model.pt",
        "--out",
        "-",
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("file,start_time,end_time,label,score"), stdout[:300]
    assert len(lines) > 1 and all(line.count(",") == lines[0].count(",") for line in lines)
    strict = tmp_path / "thresholds.csv"
    strict.write_text("label,threshold\nbackground,1.0\nharmonic,1.0\npulses,1.0\n")
    out = tmp_path / "none.csv"
    code, output = scan(
        recordings,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--thresholds",
        strict,
        "--keep-background",
    )
    assert code == 0, output
    assert pd.read_csv(out).empty
    strict.write_text("label,threshold\nharmonik,0.5\n")
    code, output = scan(
        recordings, "--model", trained / "model.pt", "--out", out, "--thresholds", strict
    )
    assert code == 1
    assert "did you mean 'harmonic'" in output


def test_each_channel_is_scanned(trained: Path, recordings: Path, tmp_path: Path) -> None:
    mono, rate = sf.read(recordings / "20240501_053000.wav")
    stereo = np.stack([mono, np.zeros_like(mono)], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, rate)
    out = tmp_path / "ch.csv"
    code, output = scan(
        tmp_path / "stereo.wav",
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--channels",
        "each",
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    table = pd.read_csv(out)
    assert set(table["channel"]) == {0, 1}


def test_ensemble_needs_matching_classes(trained: Path, recordings: Path, tmp_path: Path) -> None:
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    ckpt["classes"] = ["background", "harmonic", "trill"]
    torch.save(ckpt, tmp_path / "other.pt")
    code, output = scan(
        recordings,
        "--model",
        trained / "model.pt",
        "--model",
        tmp_path / "other.pt",
        "--out",
        tmp_path / "e.csv",
    )
    assert code == 1
    assert "classes" in output
    code, output = scan(
        recordings,
        "--model",
        trained / "model.pt",
        "--model",
        trained / "model.pt",
        "--out",
        tmp_path / "e.csv",
    )
    assert code == 0, output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nowhere/*.wav"], "no such file or folder"),
        (["{empty}"], "no audio files"),
        (["--hop", "0", "{rec}"], "--hop must be positive"),
    ],
)
def test_bad_scan_inputs(trained: Path, recordings: Path, tmp_path: Path, args, expected) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", rec=recordings) for a in args]
    code, output = scan(*args, "--model", trained / "model.pt", "--out", tmp_path / "d.csv")
    assert code == 1
    assert expected in output
    assert "Traceback" not in output


def test_workers_overlap_list_file_and_metadata(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    files = (
        sorted(recordings.rglob("*.wav"))
        + sorted(recordings.rglob("*.WAV"))
        + sorted(recordings.rglob("*.flac"))
    )
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(f) for f in files) + "\n")
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    code, output = scan(
        "--from-list",
        listing,
        "--model",
        trained / "model.pt",
        "--out",
        one,
        "--overlap",
        "0.75",
        "--threshold",
        "0.2",
    )
    assert code == 0, output
    code, output = scan(
        "--from-list",
        listing,
        "--model",
        trained / "model.pt",
        "--out",
        two,
        "--hop",
        "0.25",
        "--threshold",
        "0.2",
        "--workers",
        "3",
        "--metadata",
        "--no-merge",
    )
    assert code == 0, output
    manifest = json.loads((tmp_path / "one.manifest.json").read_text())
    assert manifest["hop_seconds"] == 0.25 and manifest["files_scanned"] == 3
    # A 0.25 s hop is finer than the trunk's 0.32 s feature step: fast mode falls back to exact.
    assert manifest["mode"] == "exact" and "scanning in exact mode" in output
    merged, windows = pd.read_csv(one), pd.read_csv(two)
    assert {"model", "model_sha256", "hop_seconds", "bioclass_version"} <= set(windows.columns)
    assert (windows["n_windows"] == 1).all() and len(windows) >= len(merged)
    # Same windows, same thresholds: every window row lies inside an event of its label.
    for row in windows.itertuples():
        same = merged[(merged["file"] == row.file) & (merged["label"] == row.label)]
        assert ((same["start_time"] <= row.start_time) & (same["end_time"] >= row.end_time)).any()
    assert list(pd.unique(merged["file"])) == [
        str(f.resolve()) for f in files if str(f.resolve()) in set(merged["file"])
    ]
