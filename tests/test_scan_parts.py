"""The scanner's parts: streaming reads, window plans, events, thresholds, timestamps, writers,
and the promise that scanning a clip gives `bioclass evaluate`'s scores for it."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import run_cli

from bioclass.audio import read_audio
from bioclass.audio.discover import collect_inputs
from bioclass.core.errors import BioclassError
from bioclass.evaluation.thresholds import fit_thresholds, read_thresholds_csv, resolve_thresholds
from bioclass.inference.stream import RecordingReader, WindowPlan
from bioclass.outputs import writers
from bioclass.outputs.event import Event
from bioclass.outputs.timestamps import parse_timestamp
from bioclass.scan import events as ev
from bioclass.scan.options import ScanOptions

# --- streaming -------------------------------------------------------------------------------


def test_reader_matches_whole_file_decoding_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((22050 * 30, 2))).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, stereo, 22050, subtype="PCM_24")
    whole = read_audio(path, 8000)  # mono mix, resampled in one go
    plan = WindowPlan.from_seconds(8000, 1.5, 0.75)
    pieces, largest = [], 0
    with RecordingReader(path, 8000, "mix") as reader:
        start = 0
        while True:
            chunk = reader.read(start, start + plan.hop_samples)
            largest = max(largest, reader.buffered_samples)
            if reader.finished and start >= reader.n_samples:
                break
            pieces.append(chunk[0])
            start += plan.hop_samples
        assert reader.n_samples == len(whole)
    streamed = np.concatenate(pieces)[: len(whole)]
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    # Never more than one decoded block (at the target rate) plus what a read spans.
    assert largest <= 65536 * 8000 / 22050 + 2 * plan.hop_samples + 64


def test_reader_selects_channels(tmp_path: Path) -> None:
    left = np.full(4000, 0.25, dtype=np.float32)
    stereo = np.stack([left, -left], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 8000, subtype="FLOAT")
    with RecordingReader(tmp_path / "s.wav", 8000, "each") as r:
        both = r.read(0, 4000)
    assert both.shape == (2, 4000)
    np.testing.assert_allclose(both[0], 0.25)
    np.testing.assert_allclose(both[1], -0.25)
    with RecordingReader(tmp_path / "s.wav", 8000, 1) as r:
        np.testing.assert_allclose(r.read(0, 4000)[0], -0.25)
    with RecordingReader(tmp_path / "s.wav", 8000, "mix") as r:
        np.testing.assert_allclose(r.read(0, 4000)[0], 0.0)
    with pytest.raises(BioclassError, match="channel 2 asked for"):
        RecordingReader(tmp_path / "s.wav", 8000, 2)


def test_reader_keeps_audio_before_damage(tmp_path: Path) -> None:
    wave = (0.1 * np.random.default_rng(1).standard_normal(8000 * 20)).astype(np.float32)
    path = tmp_path / "broken.flac"
    sf.write(path, wave, 8000)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with RecordingReader(path, 8000, "mix") as r:
        r.available_until(10**9)
        assert r.decode_error is not None and r.truncated
        # About half the file survives, minus at most one salvage piece before the damage.
        assert 9.0 < r.n_samples / 8000 < 10.5


@pytest.mark.parametrize(
    ("n_samples", "expected"),
    [(100, 1), (1000, 1), (1001, 2), (1500, 2), (1501, 3), (10_000, 19)],
)
def test_window_plan_covers_the_recording(n_samples: int, expected: int) -> None:
    plan = WindowPlan(sample_rate=1000, window_samples=1000, hop_samples=500)
    assert plan.n_windows(n_samples) == expected
    starts, ends = plan.times(n_samples)
    assert starts[0] == 0 and ends[-1] == pytest.approx(n_samples / 1000)
    assert (starts[-1] * 1000 + 1000) >= n_samples  # the last window reaches the end
    assert np.all(ends <= n_samples / 1000)


# --- scan reproduces evaluate ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_scanning_a_clip_gives_evaluate_scores(
    trained: Path, dataset: Path, tmp_path: Path, mode: str
) -> None:
    table = pd.read_csv(dataset / "labels.csv")
    lengths = [sf.info(dataset / f).duration for f in table["file"]]
    clips = table[np.array(lengths) <= 1.0].head(6)  # one window (1 s) each, as in evaluate
    assert len(clips) >= 3
    subset = tmp_path / "clips.csv"
    clips.assign(file=[str((dataset / f).resolve()) for f in clips["file"]]).to_csv(
        subset, index=False
    )
    predictions = tmp_path / "pred.csv"
    code, output = run_cli(
        "evaluate", trained / "model.pt", subset, "--predictions", predictions, "--device", "cpu"
    )
    assert code == 0, output
    scores = tmp_path / "scores.csv"
    code, output = run_cli(
        "scan",
        *[dataset / f for f in clips["file"]],
        "--model",
        trained / "model.pt",
        "--out",
        tmp_path / "d.csv",
        "--scores",
        scores,
        "--mode",
        mode,
        "--device",
        "cpu",
    )
    assert code == 0, output
    expected = pd.read_csv(predictions).set_index("file")
    got = pd.read_csv(scores).set_index("file")
    assert len(got) == len(expected)
    for name in ("background", "harmonic", "pulses"):
        np.testing.assert_allclose(
            got.loc[expected.index, name], expected[f"score_{name}"], atol=2e-5
        )


def test_fast_mode_is_close_to_exact_on_long_audio(trained: Path, tmp_path: Path) -> None:
    from bioclass.checkpoint import load_model
    from bioclass.inference.score import score_file
    from bioclass.synthetic.dataset import make_long_recording

    path = tmp_path / "rec.wav"
    make_long_recording(
        path, np.random.default_rng(3), 30.0, 8000, n_calls=6, species=["harmonic", "pulses"]
    )
    model, ckpt = load_model(trained / "model.pt")
    plan = WindowPlan.from_seconds(8000, 1.0, 0.5)
    exact = score_file(path, [model], ckpt["score_activation"], plan, mode="exact")
    fast = score_file(path, [model], ckpt["score_activation"], plan, mode="fast", batch_size=8)
    a, b = exact.streams[0].scores, fast.streams[0].scores
    assert a.shape == b.shape == (59, 3)
    assert np.mean(np.abs(a - b)) < 0.05
    assert np.mean(a.argmax(1) == b.argmax(1)) > 0.9


def test_fast_mode_refuses_windows_too_short_for_the_trunk() -> None:
    from bioclass.inference.score import fast_mode_problem
    from bioclass.models import FrontendConfig, create_model

    # CNN10 at hop 160 / 16 kHz steps 0.16 s per feature frame.
    model = create_model("cnn10", 3, FrontendConfig(sample_rate=16000, hop_length=160))
    assert fast_mode_problem([model], WindowPlan.from_seconds(16000, 3.0, 1.5)) is None
    short = fast_mode_problem([model], WindowPlan.from_seconds(16000, 0.2, 0.2))
    assert short is not None and "0.2 s window" in short
    fine_hop = fast_mode_problem([model], WindowPlan.from_seconds(16000, 3.0, 0.1))
    assert fine_hop is not None and "hop (0.1 s)" in fine_hop


# --- events ----------------------------------------------------------------------------------


def test_window_labels_apply_thresholds_and_background_rule() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    classes = ["background", "bird"]
    labels, top = ev.window_labels(scores, np.array([0.5, 0.7]), classes, "background", False)
    assert list(labels) == [None, "bird", None, None]
    np.testing.assert_allclose(top, [0.9, 0.8, 0.6, 0.6])
    labels, _ = ev.window_labels(scores, np.array([0.5, 0.7]), classes, "background", True)
    assert list(labels) == ["background", "bird", None, "background"]


def test_merge_events_joins_overlapping_windows_per_label() -> None:
    starts = np.arange(8) * 0.5
    ends = starts + 1.0
    labels = np.array(["a", "a", None, None, "b", "a", None, "a"], dtype=object)
    scores = np.array([0.6, 0.8, 0, 0, 0.9, 0.7, 0, 0.65])
    events = ev.merge_events("f", None, starts, ends, labels, scores)
    got = [(r.label, r.start_time, r.end_time, r.n_windows) for r in events]
    # a@0-1.5 (two windows); b alone; a@2.5-3.5 and a@3.5-4.5 touch, so they merge.
    assert got == [("a", 0.0, 1.5, 2), ("b", 2.0, 3.0, 1), ("a", 2.5, 4.5, 2)]
    first = events[0]
    assert first.score == pytest.approx(0.8) and first.mean_score == pytest.approx(0.7)
    bridged = ev.merge_events("f", None, starts, ends, labels, scores, min_gap_s=1.0)
    assert [(r.label, r.start_time, r.end_time) for r in bridged] == [
        ("a", 0.0, 4.5),
        ("b", 2.0, 3.0),
    ]
    long_only = ev.merge_events("f", None, starts, ends, labels, scores, min_duration_s=1.5)
    assert [e.label for e in long_only] == ["a", "a"]
    rows = ev.window_rows("f", None, starts, ends, labels, scores)
    assert len(rows) == 5 and {e.n_windows for e in rows} == {1}
    assert [e.start_time for e in rows] == [0.0, 0.5, 2.0, 2.5, 3.5]


def test_split_at_valleys_splits_deepest_first_and_drops_the_valley() -> None:
    scores = np.array([0.9, 0.95, 0.5, 0.9, 0.7, 0.92, 0.6])
    group = np.arange(7)
    parts = ev.split_at_valleys(group, scores, 2.0)
    # In log-odds, window 2 (0) is 2.44 below the lower high around it (0.95: 2.94 before,
    # 0.92: 2.44 after); inside the part after it, window 4 (0.85) is 1.35 below the lower of
    # 0.9 (2.20) and 0.92; the last window is an end, not a valley.
    assert [list(p) for p in parts] == [[0, 1], [3, 4, 5, 6]]
    deep = [list(p) for p in ev.split_at_valleys(group, scores, 1.3)]
    assert deep == [[0, 1], [3], [5, 6]]
    assert [list(p) for p in ev.split_at_valleys(group, scores, 0.0)] == [list(group)]
    assert [list(p) for p in ev.split_at_valleys(group, scores, 2.45)] == [list(group)]
    # Near 1, where a score difference says nothing, log-odds still see the dip.
    saturated = np.array([0.998, 0.999, 0.989, 0.998, 0.997])
    assert [list(p) for p in ev.split_at_valleys(np.arange(5), saturated, 1.5)] == [[0, 1], [3, 4]]


def test_centre_spans_tile_the_stream() -> None:
    starts = np.arange(5) * 0.5
    lo, hi = ev.centre_spans(starts, starts + 1.0)
    # Centres 0.5, 1.0, ...: each window reaches half a hop each side; the first back to its
    # start, the last forward to its end.
    assert lo == pytest.approx([0.0, 0.75, 1.25, 1.75, 2.25])
    assert hi == pytest.approx([0.75, 1.25, 1.75, 2.25, 3.0])
    empty = np.zeros(0)
    assert [len(x) for x in ev.centre_spans(empty, empty)] == [0, 0]


def test_event_rules_in_stream_events() -> None:
    """Two calls of one class 0.1 s apart, seen by 1 s windows 0.25 s apart: window edges merge
    them into one 2.25 s event; centre edges keep the event to its windows' stretches; a
    valley split makes two events."""
    starts = np.arange(10) * 0.25
    ends = starts + 1.0
    bird = np.array([0.1, 0.8, 0.9, 0.85, 0.55, 0.9, 0.95, 0.8, 0.2, 0.1])
    scores = np.stack([1 - bird, bird], axis=1)
    detector = ev.Detector(["background", "bird"], np.array([0.5, 0.5]), "background")

    def events(**rules) -> list[tuple[float, float, int]]:
        options = ScanOptions(out=Path("-"), **rules)
        table = ev.stream_events("f", None, starts, ends, scores, detector, options)
        return [(r.start_time, r.end_time, r.n_windows) for r in table]

    assert events() == [(0.25, 2.75, 7)]
    assert events(event_edges="centre") == [(pytest.approx(0.625), pytest.approx(2.375), 7)]
    split = events(event_edges="centre", split_valleys=1.0)
    assert split == [
        (pytest.approx(0.625), pytest.approx(1.375), 3),
        (pytest.approx(1.625), pytest.approx(2.375), 3),
    ]
    assert events(split_valleys=1.0) == [(0.25, 1.75, 3), (1.25, 2.75, 3)]
    assert events(split_valleys=2.0) == [(0.25, 2.75, 7)]  # 2.0 deep in log-odds: not enough


def test_event_rules_are_checked() -> None:
    with pytest.raises(BioclassError, match="--no-merge writes windows"):
        ScanOptions(out=Path("-"), merge=False, event_edges="centre")
    with pytest.raises(BioclassError, match="--no-merge writes windows"):
        ScanOptions(out=Path("-"), merge=False, split_valleys=0.2)
    with pytest.raises(BioclassError, match="--event-edges must be window or centre"):
        ScanOptions(out=Path("-"), event_edges="middle")
    with pytest.raises(BioclassError, match="0 or more"):
        ScanOptions(out=Path("-"), split_valleys=-0.5)
    with pytest.raises(BioclassError, match="0 or more"):
        ScanOptions(out=Path("-"), split_valleys=float("nan"))


# --- thresholds ------------------------------------------------------------------------------


def test_fit_thresholds_maximises_f1_of_the_scan_rule() -> None:
    # Class 1: clips whose top class is 1 have scores 0.9, 0.8 (true) and 0.6 (false).
    scores = np.array([[0.1, 0.9], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.8, 0.2]])
    targets = np.array([1, 1, 0, 0, 0])
    fitted = fit_thresholds(scores, targets, ["background", "bird"], "background")
    bird = fitted["bird"]
    assert 0.6 < bird["threshold"] <= 0.8
    assert bird["f1"] == pytest.approx(1.0) and bird["support"] == 2
    labels, _ = ev.window_labels(
        scores, np.array([0.5, bird["threshold"]]), ["background", "bird"], "background", False
    )
    assert list(labels) == ["bird", "bird", None, None, None]
    none = fit_thresholds(scores, np.zeros(5, dtype=int), ["background", "bird"], "background")
    assert none["bird"]["threshold"] is None  # no positives: the scan's default applies
    assert list(resolve_thresholds(["background", "bird"], 0.3, {"bird": None}, None)) == [0.3, 0.3]


def test_thresholds_csv_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("label,threshold\nbird,0.7\n")
    assert read_thresholds_csv(path, ["background", "bird"]) == {"bird": 0.7}
    path.write_text("label,threshold\nbird,high\n")
    with pytest.raises(BioclassError, match="row 2: threshold must be a number"):
        read_thresholds_csv(path, ["background", "bird"])
    path.write_text("name,value\nbird,0.7\n")
    with pytest.raises(BioclassError, match="needs columns label,threshold"):
        read_thresholds_csv(path, ["bird"])


# --- timestamps and writers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20240501_053000.WAV", datetime(2024, 5, 1, 5, 30, 0)),
        ("S4A03895_20190522_000000.flac", datetime(2019, 5, 22, 0, 0, 0)),
        ("SMM01234_20240501_060000_extra.wav", datetime(2024, 5, 1, 6, 0, 0)),
        ("site3/2023-07-14T21-05-30.wav", datetime(2023, 7, 14, 21, 5, 30)),
        ("rec 2023-07-14 21:05:30.flac", datetime(2023, 7, 14, 21, 5, 30)),
        ("5E90A4C0.WAV", datetime(2020, 4, 10, 16, 54, 24)),  # 0x5E90A4C0 s after 1970
        ("20241399_999999.wav", None),
        ("clip_0001.wav", None),
        ("DEADBEEF.wav", None),
    ],
)
def test_timestamps_from_recorder_file_names(name: str, expected: datetime | None) -> None:
    assert parse_timestamp(name) == expected


def test_raven_table_uses_cumulative_begin_times(tmp_path: Path) -> None:
    events = [Event("a", None, 1.0, 2.5, "bird", 0.9, 0.8, 2)]
    raven = writers.CombinedRavenTable(tmp_path / "sel.txt", tmp_path / "list.txt", (0.0, 4000.0))
    raven.add("/x/a.wav", 10.0, events)
    raven.add("/x/silent.wav", 5.0, [])
    raven.add("/x/b.wav", 7.0, [events[0]._replace(file="b", channel=1)])
    raven.commit()
    table = pd.read_csv(tmp_path / "sel.txt", sep="\t")
    assert list(table.columns) == writers.RAVEN_COLUMNS
    assert list(table["Begin Time (s)"]) == [1.0, 16.0]  # b starts after 10 + 5 s
    assert list(table["File Offset (s)"]) == [1.0, 1.0]
    assert list(table["Channel"]) == [1, 2]
    assert list(table["Selection"]) == [1, 2]
    # The list file names every scanned file, in the timeline's order (also the silent one).
    assert (tmp_path / "list.txt").read_text() == "/x/a.wav\n/x/silent.wav\n/x/b.wav\n"


def test_audacity_paths_never_collide(tmp_path: Path) -> None:
    files = [
        tmp_path / "a" / "x.wav",
        tmp_path / "b" / "x.wav",
        tmp_path / "a" / "x.flac",
        tmp_path / "a" / "y.wav",
    ]
    targets = writers.audacity_paths(tmp_path / "out", files)
    assert len(set(targets.values())) == 4
    assert targets[files[3]] == tmp_path / "out" / "a" / "y.txt"


def test_staged_outputs_are_invisible_until_committed(tmp_path: Path) -> None:
    target = tmp_path / "det.csv"
    csv = writers.DetectionsCsv(target, False, False, None, tmp_path)
    assert not target.exists()
    csv.discard()
    assert not target.exists() and not list(tmp_path.iterdir())


# --- inputs ----------------------------------------------------------------------------------


def test_inputs_from_folders_globs_and_list_files(tmp_path: Path) -> None:
    for name in ("a/1.WAV", "a/b/2.flac", "c/3.wav", "c/notes.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# season 1\nc/3.wav\n\na/1.WAV\n")
    found = collect_inputs([tmp_path / "a", str(tmp_path / "c" / "*.wav")], listing)
    names = [p.name for p in found]
    assert names == ["1.WAV", "2.flac", "3.wav"]  # de-duplicated, in order
    with pytest.raises(BioclassError, match="no such file or folder"):
        collect_inputs([str(tmp_path / "nope" / "*.wav")])


def test_damaged_file_is_scanned_up_to_the_damage_and_reported(
    trained: Path, tmp_path: Path
) -> None:
    wave = (0.05 * np.random.default_rng(2).standard_normal(8000 * 12)).astype(np.float32)
    path = tmp_path / "rec" / "damaged.flac"
    path.parent.mkdir()
    sf.write(path, wave, 8000)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    out = tmp_path / "d.csv"
    code, output = run_cli(
        "scan",
        path.parent,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    manifest = json.loads((tmp_path / "d.manifest.json").read_text())
    assert manifest["files_scanned"] == 1 and manifest["files_failed"] == 0
    assert "decoding failed" in manifest["files_damaged"][0]["note"]
    assert 4.0 < pd.read_csv(out)["end_time"].max() < 7.0
    assert "decoding failed" in output


def test_prefetch_passes_items_errors_and_early_exit() -> None:
    import threading

    from bioclass.inference.stream import prefetch

    assert list(prefetch(iter(range(10)), depth=2)) == list(range(10))

    def failing():
        yield 1
        raise ValueError("damaged block")

    got = []
    with pytest.raises(ValueError, match="damaged block"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]
    before = threading.active_count()
    for item in prefetch(iter(range(1000)), depth=2):
        if item == 3:
            break  # the producer must not be left blocked on a full queue
    assert threading.active_count() <= before
