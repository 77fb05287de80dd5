"""`bioclass evaluate SOURCE --annotations TABLE`: window, event and recording metrics against
annotation tables, computed by hand on small detections tables and score matrices; bootstrap
intervals (a hand-enumerable case and degenerate ones); a model scanned end to end; and every
bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import run_cli, run_cli_streams

from bioclass.evaluation.bootstrap import interval, ratio_columns, recording_draws
from bioclass.evaluation.intervals import contained
from bioclass.evaluation.metrics import average_precision
from bioclass.evaluation.ranking import weighted_average_precision, weighted_roc_auc
from bioclass.evaluation.truth import event_scores
from bioclass.evaluation.window_level import IGNORED, NEGATIVE, POSITIVE, label_windows
from bioclass.scan.events import Detector, events_from_score_matrix
from bioclass.scan.options import ScanOptions
from bioclass.synthetic.dataset import make_long_recording

SR = 8000


def wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * SR), np.float32), SR, subtype="PCM_16")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def evaluate(*args: object) -> tuple[int, str]:
    return run_cli("evaluate", *args)


def one_line_error(code: int, output: str) -> str:
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    return lines[0]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Two 10 s recordings, four boxes, five detections (2 false, one box missed).

    r1: bird 1-2 (found by 1.2-2.5), bird 5-6 (missed), frog 7-9 (found by 7.5-8);
        false bird 3-4.
    r2: bird 2-3 (found by 2.5-3.5); false frog 6-7.
    """
    for name in ("r1", "r2"):
        wav(tmp_path / f"{name}.wav", 10.0)
    write(
        tmp_path / "boxes.csv",
        "file,start_time,end_time,label\n"
        "r1.wav,1,2,bird\nr1.wav,5,6,bird\nr1.wav,7,9,frog\nr2.wav,2,3,bird\n",
    )
    r1, r2 = tmp_path / "r1.wav", tmp_path / "r2.wav"
    write(
        tmp_path / "det.csv",
        "file,start_time,end_time,label,score\n"
        f"{r1},1.2,2.5,bird,0.9\n{r1},3,4,bird,0.6\n{r1},7.5,8,frog,0.8\n"
        f"{r2},2.5,3.5,bird,0.7\n{r2},6,7,frog,0.4\n",
    )
    return tmp_path


def report_of(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def evaluate_json(*args: object) -> dict:
    """The JSON report on stdout (`--out -`: no tables or plots written, which keeps it fast)."""
    code, stdout, stderr = run_cli_streams("evaluate", *args, "--out", "-")
    assert code == 0, stderr
    return json.loads(stdout)


def test_event_and_recording_metrics_by_hand(site: Path) -> None:
    out = site / "rep.json"
    code, output = evaluate(site / "det.csv", "--annotations", site / "boxes.csv", "--out", out)
    assert code == 0, output
    report = report_of(out)
    events = report["events"]
    bird, frog, pooled = events["per_class"]["bird"], events["per_class"]["frog"], events["all"]
    assert (bird["tp"], bird["fp"], bird["fn"]) == (2, 1, 1)
    assert bird["precision"] == pytest.approx(2 / 3) and bird["recall"] == pytest.approx(2 / 3)
    assert (frog["tp"], frog["fp"], frog["fn"]) == (1, 1, 0)
    assert frog["precision"] == 0.5 and frog["recall"] == 1.0
    assert frog["f1"] == pytest.approx(2 / 3)
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (3, 2, 1)
    assert pooled["precision"] == pytest.approx(3 / 5) and pooled["recall"] == 0.75
    # Recording level: bird present in r1 and r2, detected in both; frog present in r1 only,
    # detected in r1 and r2.
    level = report["recordings_level"]["per_class"]
    assert (level["bird"]["tp"], level["bird"]["fp"], level["bird"]["fn"]) == (2, 0, 0)
    assert (level["frog"]["tp"], level["frog"]["fp"], level["frog"]["fn"]) == (1, 1, 0)
    assert report["recordings_level"]["all"]["precision"] == 0.75
    # No manifest beside the CSV: no window level, said so; every label evaluated.
    assert report["windows"] is None
    assert any("window level skipped" in n for n in report["notes"])
    # The per-detection table says which box each true detection found.
    detail = pd.read_csv(site / "rep.detections.csv")
    outcomes = ["true positive", "false positive", "true positive", "true positive"]
    assert list(detail["outcome"]) == [*outcomes, "false positive"]
    assert list(detail["box_row"].fillna(-1).astype(int)) == [2, -1, 4, 5, -1]
    boxes = pd.read_csv(site / "rep.boxes.csv")
    assert list(boxes["found"]) == [True, False, True, True]
    for suffix in (".events.csv", ".recordings.csv", ".score_histograms.png"):
        assert (site / f"rep{suffix}").is_file()
    assert not (site / "rep.windows.csv").exists()


def test_bootstrap_intervals_by_enumeration_and_degenerate(site: Path) -> None:
    """Two recordings: a replicate draws r1 twice, r1 and r2, or r2 twice (p = 1/4, 1/2, 1/4).
    Pooled precision is 2/3 (r1: 2 of 3), 3/5 or 1/2 (r2: 1 of 2), so 1000 replicates give the
    interval [1/2, 2/3]. Pooled F1 is 2/3 in both recordings (r1: 4/6, r2: 2/3), so in every
    replicate: a degenerate interval."""
    args = (site / "det.csv", "--annotations", site / "boxes.csv", "--seed", 3)
    first = evaluate_json(*args)
    pooled = first["events"]["all"]
    assert pooled["precision_low"] == pytest.approx(1 / 2)
    assert pooled["precision_high"] == pytest.approx(2 / 3)
    assert pooled["f1_low"] == pytest.approx(2 / 3) and pooled["f1_high"] == pytest.approx(2 / 3)
    # Seeded: the same command gives the same report.
    assert evaluate_json(*args) == first
    # --bootstrap 0: no intervals.
    assert evaluate_json(*args, "--bootstrap", 0)["events"]["all"]["precision_low"] is None


def test_one_recording_gives_point_intervals(site: Path) -> None:
    write(site / "r1_boxes.csv", "file,start_time,end_time,label\nr1.wav,1,2,bird\n")
    report = evaluate_json(site / "det.csv", "--annotations", site / "r1_boxes.csv")
    bird = report["events"]["per_class"]["bird"]
    assert bird["precision"] == 0.5  # r1: one true, one false bird detection
    assert bird["precision_low"] == bird["precision_high"] == 0.5
    assert any("degenerate" in n for n in report["notes"])
    # r2 is not annotated: its detections are left out, and the report says so.
    assert any("no annotation table covers" in n for n in report["notes"])


def test_ratio_columns_and_interval_helpers() -> None:
    # Recording counts (R=2, C=1): replicates are the ones enumerated above.
    draws = recording_draws(2, 2000, seed=0)
    assert draws.shape == (2000, 2) and (draws.sum(axis=1) == 2).all()
    cols = ratio_columns(np.array([[2], [1]]), np.array([[1], [1]]), np.array([[1], [0]]), draws)
    assert cols["precision"][0] == pytest.approx(3 / 5)
    assert cols["precision_low"][0] == pytest.approx(1 / 2)
    assert cols["precision_high"][0] == pytest.approx(2 / 3)
    low, high = interval(np.array([[np.nan, 1.0], [np.nan, 3.0]]))
    assert np.isnan(low[0]) and low[1] == pytest.approx(1.05) and high[1] == pytest.approx(2.95)


def test_weighted_ranking_metrics_equal_repeated_recordings() -> None:
    """A replicate drawing recording 0 twice and recording 2 once scores like the windows of
    recording 0 listed twice and those of recording 2 once (recording 1 left out)."""
    rng = np.random.default_rng(4)
    scores = np.round(rng.uniform(size=60), 1)  # rounded: many ties
    positive = rng.uniform(size=60) < 0.3
    recording = rng.integers(0, 3, size=60)
    draws = np.array([[2, 0, 1], [1, 1, 1], [0, 3, 0]])
    ap = weighted_average_precision(scores, positive, draws, recording)
    auc = weighted_roc_auc(scores, positive, draws, recording)
    for b, row in enumerate(draws):
        repeat = row[recording]
        s, y = np.repeat(scores, repeat), np.repeat(positive, repeat)
        assert ap[b] == pytest.approx(average_precision(s, y))
        assert auc[b] == pytest.approx(weighted_roc_auc(s, y)[0])
    assert ap[1] == pytest.approx(weighted_average_precision(scores, positive)[0])
    # Hand-computed AUC with a tie: positives 0.9, 0.5; negatives 0.5, 0.1 -> (2 + 1.5) / 4.
    assert weighted_roc_auc([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])[0] == pytest.approx(7 / 8)
    assert np.isnan(weighted_average_precision([0.3, 0.2], [0, 0])[0])


def test_window_labels_overlap_rule() -> None:
    """Windows [0,1), [1,2), [2,3); boxes: 0.2-0.8 (inside window 0), 1.8-3.0 (0.2 s of window 1,
    all of window 2); default: half the shorter of window and box."""
    win = (np.zeros(3, int), np.array([0.0, 1, 2]), np.array([1.0, 2, 3]))
    box = (np.zeros(2, int), np.array([0.2, 1.8]), np.array([0.8, 3.0]), np.array([0, 0]))
    labels = label_windows(*win, *box, n_classes=1)
    assert list(labels[:, 0]) == [POSITIVE, IGNORED, POSITIVE]
    labels = label_windows(*win, *box, n_classes=1, min_overlap_s=0.1)
    assert list(labels[:, 0]) == [POSITIVE, POSITIVE, POSITIVE]
    # 0.7 s asked: the 0.6 s box still counts inside window 0 (capped at its length).
    labels = label_windows(*win, *box, n_classes=1, min_overlap_s=0.7)
    assert list(labels[:, 0]) == [POSITIVE, IGNORED, POSITIVE]
    far = label_windows(*win, np.zeros(1, int), [5.0], [6.0], [0], n_classes=1)
    assert list(far[:, 0]) == [NEGATIVE] * 3
    # Extent: windows wholly inside a stretch count (1 ms of rounding allowed).
    inside = contained(win[1], win[2], win[0], np.array([0.0]), np.array([2.0005]), np.zeros(1))
    assert list(inside) == [True, True, False]


@pytest.fixture
def matrix_site(tmp_path: Path) -> Path:
    """A score matrix of 1 s windows over two 4 s recordings (classes background, bird, frog).

    r1 boxes: bird 0.2-0.8 (window 0 positive), bird 1.8-3.0 (window 1 grazed: ignored for
    bird; window 2 positive). r2: frog 3-4 (window 3 positive).
    """
    for name in ("r1", "r2"):
        wav(tmp_path / f"{name}.wav", 4.0)
    write(
        tmp_path / "boxes.csv",
        "file,start_time,end_time,label\n"
        "r1.wav,0.2,0.8,bird\nr1.wav,1.8,3.0,bird\nr2.wav,3,4,frog\n",
    )
    scores = {
        "r1": [(0.1, 0.8, 0.1), (0.3, 0.6, 0.1), (0.5, 0.4, 0.1), (0.2, 0.7, 0.1)],
        "r2": [(0.9, 0.05, 0.05), (0.6, 0.3, 0.1), (0.7, 0.1, 0.2), (0.3, 0.1, 0.6)],
    }
    rows = [
        f"{tmp_path / (name + '.wav')},,{k}.0,{k + 1}.0,{b},{bird},{frog}"
        for name, windows in scores.items()
        for k, (b, bird, frog) in enumerate(windows)
    ]
    write(
        tmp_path / "scores.csv",
        "file,channel,start_time,end_time,background,bird,frog\n" + "\n".join(rows) + "\n",
    )
    return tmp_path


def test_window_level_by_hand(matrix_site: Path) -> None:
    out = matrix_site / "rep.json"
    code, output = evaluate(
        matrix_site / "scores.csv", "--annotations", matrix_site / "boxes.csv", "--out", out
    )
    assert code == 0, output
    report = report_of(out)
    windows = report["windows"]
    bird, frog = windows["per_class"]["bird"], windows["per_class"]["frog"]
    # bird: 7 windows count (r1's window 1 is ignored); ranked 0.8+ 0.7- 0.4+ 0.3- 0.1- 0.1- 0.05-
    assert (bird["windows"], bird["positives"], bird["ignored"]) == (7, 2, 1)
    assert bird["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert bird["auc"] == pytest.approx(9 / 10)
    # Scan rule at 0.5 (no manifest: the default): r1 w0 true, r1 w3 false, r1 w2 missed (its
    # top class is background).
    assert bird["threshold"] == 0.5
    assert (bird["tp"], bird["fp"], bird["fn"]) == (1, 1, 1)
    assert frog["ap"] == 1.0 and frog["auc"] == 1.0 and (frog["tp"], frog["fp"]) == (1, 0)
    assert windows["all"]["ap"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert windows["all"]["auc"] == pytest.approx(0.95)
    assert windows["all"]["precision"] == pytest.approx(2 / 3)
    # The sweep: bird's top windows are r1 w0 (0.8, positive) and r1 w3 (0.7, negative).
    sweep = pd.read_csv(matrix_site / "rep.sweep.csv")
    row = sweep[(sweep["label"] == "bird") & np.isclose(sweep["threshold"], 0.75)].iloc[0]
    assert (row["tp"], row["fp"], row["fn"]) == (1, 0, 1)
    row = sweep[(sweep["label"] == "bird") & np.isclose(sweep["threshold"], 0.0)].iloc[0]
    assert (row["tp"], row["fp"], row["fn"]) == (1, 1, 1)
    # Events re-made with the scan's rule: bird windows 0-1, 1-2 (0.6 >= 0.5) merge into 0-2,
    # which matches the 0.2-0.8 box (largest overlap); 3-4 is false; frog 3-4 true.
    events = report["events"]["per_class"]
    assert (events["bird"]["tp"], events["bird"]["fp"], events["bird"]["fn"]) == (1, 1, 1)
    assert (events["frog"]["tp"], events["frog"]["fp"], events["frog"]["fn"]) == (1, 0, 0)
    assert report["recordings_level"]["all"]["f1"] == 1.0
    assert report["threshold_origin"].startswith("default 0.5")
    assert (matrix_site / "rep.pr_curves.png").is_file()
    # --threshold re-thresholds windows and events: at 0.65 r1 w1 (0.6) is no longer bird.
    report = evaluate_json(
        matrix_site / "scores.csv", "--annotations", matrix_site / "boxes.csv", "--threshold", 0.65
    )
    assert report["windows"]["per_class"]["bird"]["threshold"] == 0.65
    assert report["events"]["per_class"]["bird"]["tp"] == 1


def test_extent_limits_what_counts(matrix_site: Path) -> None:
    """Extent r1 0-2 s and r2 whole: r1's windows 2 and 3 and the false bird event at 3-4 s no
    longer count; the box 1.8-3.0 straddles the edge and still counts."""
    write(
        matrix_site / "extent.csv",
        f"file,start_time,end_time\nr1.wav,0,2\n{matrix_site / 'r2.wav'},0,4\n",
    )
    out = matrix_site / "rep.json"
    code, output = evaluate(
        matrix_site / "scores.csv",
        "--annotations",
        matrix_site / "boxes.csv",
        "--extent",
        matrix_site / "extent.csv",
        "--out",
        out,
    )
    assert code == 0, output
    report = report_of(out)
    assert report["annotated_hours"] == pytest.approx(6 / 3600)
    bird = report["windows"]["per_class"]["bird"]
    assert (bird["windows"], bird["positives"]) == (5, 1)  # r1 w0 (pos), r2 w0-w3
    events = report["events"]["per_class"]["bird"]
    assert (events["tp"], events["fp"], events["fn"]) == (1, 0, 1)
    outcomes = pd.read_csv(matrix_site / "rep.detections.csv")["outcome"]
    assert "outside extent" in set(outcomes)


def test_unknown_labels_are_ignored_and_reported(matrix_site: Path) -> None:
    write(
        matrix_site / "more.csv",
        "file,start_time,end_time,label\nr1.wav,0.2,0.8,bird\nr2.wav,3,4,frog\n"
        "r2.wav,1,2,owl\nr2.wav,2,3,owl\nr1.wav,3,4,background\n",
    )
    report = evaluate_json(matrix_site / "scores.csv", "--annotations", matrix_site / "more.csv")
    note = next(n for n in report["notes"] if "does not know" in n)
    assert "owl (2 boxes)" in note and "background (1 box, the model's background class)" in note
    assert "not counted as misses" in note and "--map background=" in note
    assert report["events"]["all"]["fn"] == 0  # the owls are not misses
    # --map renames them into a model class: now they are frogs, and missed.
    tables = (
        "--annotations",
        matrix_site / "more.csv",
        "--map",
        "owl=frog",
        "--map",
        "background=",
    )
    report = evaluate_json(matrix_site / "scores.csv", *tables)
    assert report["events"]["per_class"]["frog"]["fn"] == 2
    assert not any("does not know" in n for n in report["notes"])


def test_recordings_the_detections_never_mention(site: Path) -> None:
    wav(site / "r3.wav", 10.0)
    write(site / "r3.txt", "1.0\t2.0\tbird\n")  # Audacity labels of a third recording
    tables = ("--annotations", site / "boxes.csv", "--annotations", site / "r3.txt")
    report = evaluate_json(site / "det.csv", *tables)
    note = next(n for n in report["notes"] if "skipped" in n and "r3.wav" in n)
    assert "--absent empty" in note
    assert report["recordings"] == 2 and report["events"]["all"]["fn"] == 1
    report = evaluate_json(site / "det.csv", *tables, "--absent", "empty")
    assert report["recordings"] == 3 and report["events"]["all"]["fn"] == 2  # r3's bird missed


def test_model_scanned_end_to_end(trained: Path, tmp_path: Path) -> None:
    """A synthetic recording with known calls, its truth as the annotation table: the model is
    scanned with window scores kept, and the three levels come out; the kept scan evaluated
    again as a detections CSV and as a score matrix gives the same events."""
    rng = np.random.default_rng(11)
    recording = tmp_path / "audio" / "20240501_053000.wav"
    recording.parent.mkdir()
    truth = make_long_recording(recording, rng, 16.0, SR, 4, species=["harmonic", "pulses"])
    truth.insert(0, "file", recording.name)
    truth.to_csv(tmp_path / "audio" / "truth.csv", index=False)
    out = tmp_path / "report" / "rep.json"
    code, output = evaluate(
        trained / "model.pt",
        "--annotations",
        tmp_path / "audio" / "truth.csv",
        "--scan-out",
        tmp_path / "scan",
        "--out",
        out,
        "--bootstrap",
        50,
        "--device",
        "cpu",
    )
    assert code == 0, output
    assert "events" in output and "windows" in output and "recordings" in output
    report = report_of(out)
    assert report["source_kind"] == "model" and report["window_level"]
    assert report["classes"] == ["harmonic", "pulses"]  # background is not evaluated
    assert report["events"]["all"]["boxes"] == len(truth)
    assert report["threshold_origin"].startswith("the model's fitted thresholds")
    windows = report["windows"]["per_class"]
    assert set(windows) == {"harmonic", "pulses"}
    assert windows["harmonic"]["positives"] > 0
    assert 0.0 <= windows["harmonic"]["auc"] <= 1.0
    for name in ("windows", "sweep", "events", "recordings", "boxes", "detections"):
        assert (tmp_path / "report" / f"rep.{name}.csv").is_file()
    assert (tmp_path / "report" / "rep.pr_curves.png").is_file()
    scan_dir = tmp_path / "scan"
    assert (scan_dir / "detections.csv").is_file()
    assert (scan_dir / "detections.scores.parquet").is_file()
    # The event level agrees with `scan --truth` on the same detections (whole recordings are
    # the extent, so every detection counts).
    scan_truth = event_scores(pd.read_csv(scan_dir / "detections.csv"), truth)
    pooled = scan_truth[scan_truth["label"] == "all"].iloc[0]
    events = report["events"]["all"]
    assert (events["tp"], events["tp"] + events["fp"]) == (pooled["matched"], pooled["detections"])
    truth_table = tmp_path / "audio" / "truth.csv"
    for source in (scan_dir / "detections.csv", scan_dir / "detections.scores.parquet"):
        other = evaluate_json(source, "--annotations", truth_table, "--bootstrap", 50)
        assert other["events"]["all"] == report["events"]["all"], source
        assert other["windows"]["all"]["ap"] == pytest.approx(report["windows"]["all"]["ap"])


def test_event_rules_are_the_same_in_scan_and_evaluate(trained: Path, tmp_path: Path) -> None:
    """Event edges at window centres and valley splits: `scan` records them in its manifest,
    and `evaluate` of the model with the same rules scans with them, to the same detections; a
    detections CSV, whose events are made already, refuses them."""
    rng = np.random.default_rng(5)
    recording = tmp_path / "audio" / "rec.wav"
    recording.parent.mkdir()
    truth = make_long_recording(recording, rng, 16.0, SR, 6, species=["harmonic", "pulses"])
    truth.insert(0, "file", recording.name)
    table = tmp_path / "audio" / "truth.csv"
    truth.to_csv(table, index=False)
    rules = ("--event-edges", "centre", "--split-valleys", 0.05)
    out = tmp_path / "scan" / "det.csv"
    code, output = run_cli(
        "scan", recording, "--model", trained / "model.pt", "--device", "cpu", "--out", out, *rules
    )
    assert code == 0, output
    scan_out = tmp_path / "eval_scan"
    code, output = evaluate(
        trained / "model.pt", "--annotations", table, "--scan-out", scan_out, "--device", "cpu",
        "--bootstrap", 0, *rules,
    )  # fmt: skip
    assert code == 0, output
    manifests = (tmp_path / "scan" / "det.manifest.json", scan_out / "detections.manifest.json")
    for manifest in manifests:
        recorded = report_of(manifest)
        assert (recorded["event_edges"], recorded["split_valleys"]) == ("centre", 0.05), manifest
    columns = ["file", "start_time", "end_time", "label", "score"]
    from_evaluate = pd.read_csv(scan_out / "detections.csv")[columns]
    pd.testing.assert_frame_equal(from_evaluate, pd.read_csv(out)[columns])
    message = one_line_error(*evaluate(out, "--annotations", table, "--event-edges", "window"))
    assert "--event-edges" in message and "give its score matrix" in message


def test_event_rules_on_a_score_matrix(tmp_path: Path) -> None:
    """Two bird calls 0.1 s apart under 1 s windows 0.25 s apart: the scan's default rules make
    one event of them (one box found, one missed); centre edges and a valley split make two,
    both found; `evaluate` makes exactly the events `scan`'s rule makes of the matrix."""
    recording = wav(tmp_path / "r.wav", 3.5)
    write(
        tmp_path / "boxes.csv",
        "file,start_time,end_time,label\nr.wav,0.9,1.3,bird\nr.wav,1.4,1.8,bird\n",
    )
    bird = [0.1, 0.8, 0.9, 0.85, 0.55, 0.9, 0.95, 0.8, 0.2, 0.1, 0.1]
    starts = np.arange(len(bird)) * 0.25
    matrix = pd.DataFrame(
        {
            "file": str(recording),
            "channel": pd.array([None] * len(bird), dtype="Int64"),
            "start_time": starts,
            "end_time": starts + 1.0,
            "background": 1 - np.array(bird),
            "bird": bird,
        }
    )
    matrix.to_csv(tmp_path / "scores.csv", index=False)
    tables = ("--annotations", tmp_path / "boxes.csv", "--bootstrap", 0)
    plain = evaluate_json(tmp_path / "scores.csv", *tables)["events"]["all"]
    assert (plain["detections"], plain["tp"], plain["fn"]) == (1, 1, 1)
    rules = ("--event-edges", "centre", "--split-valleys", 1.0)
    split = evaluate_json(tmp_path / "scores.csv", *tables, *rules)["events"]["all"]
    assert (split["detections"], split["tp"], split["fn"]) == (2, 2, 0)
    detector = Detector(["background", "bird"], np.array([0.5, 0.5]), "background")
    options = ScanOptions(out=Path("-"), event_edges="centre", split_valleys=1.0)
    assert len(events_from_score_matrix(matrix, detector, options)) == split["detections"]


def test_clip_evaluation_is_unchanged_and_forms_do_not_mix(
    trained: Path, dataset: Path, site: Path
) -> None:
    code, output = evaluate(trained / "model.pt", dataset / "labels.csv")
    assert code == 0, output
    assert "UAR / mAP" in output
    det = (site / "det.csv", "--annotations", site / "boxes.csv")
    cases = [
        ((trained / "model.pt",), "give labelled DATA"),
        ((trained / "model.pt", dataset / "labels.csv", "--map", "a=b"), "--map belong to"),
        ((*det, "--split", "test"), "--split"),
        ((*det, site / "x.csv"), "only argument"),
        ((*det, "--threshold", 0.3), "give its score matrix"),
        ((*det, "--scan-out", site), "is a detections CSV"),
        ((*det, "--map", "bird"), "OLD=NEW"),
        (
            (trained / "model.pt", "--annotations", site / "boxes.csv", "--absent", "empty"),
            "--absent",
        ),
        ((site, "--annotations", site / "boxes.csv"), "is a folder"),
        ((site / "nope.csv", "--annotations", site / "boxes.csv"), "not found"),
        ((site / "det.csv", "--annotations", site / "none.csv"), "annotation table not found"),
    ]
    for args, expected in cases:
        message = one_line_error(*evaluate(*args))
        assert expected in message, (args, message)


def test_bad_sources_are_one_line(site: Path) -> None:
    tables = ("--annotations", site / "boxes.csv")
    r1 = site / "r1.wav"
    bad = {
        "missing.csv": ("file,start_time,label\nr1.wav,1,bird\n", "missing: end_time"),
        "times.csv": (f"file,start_time,end_time,label\n{r1},1,x,bird\n", "row 2: end_time 'x'"),
        "order.csv": (f"file,start_time,end_time,label\n{r1},2,1,bird\n", "not after"),
        "empty.csv": ("file,start_time,end_time,label,score\n", "has no detections"),
        "columns.csv": ("a,b\n1,2\n", "neither a detections CSV"),
        "channels.csv": (
            f"file,channel,start_time,end_time,label\n{r1},0,1,2,bird\n{r1},1,1,2,bird\n",
            "channel by channel",
        ),
        "elsewhere.csv": (
            "file,start_time,end_time,label\n/other/x.wav,1,2,bird\n",
            "none of the 2 annotated recording(s) appear",
        ),
    }
    for name, (text, expected) in bad.items():
        message = one_line_error(*evaluate(write(site / name, text), *tables))
        assert expected in message, (name, message)
    # No box left and no detection: nothing to evaluate, not an empty report.
    write(site / "owls.csv", "file,start_time,end_time,label\nr1.wav,1,2,owl\n")
    args = ("--annotations", site / "owls.csv", "--map", "owl=", "--absent", "empty")
    message = one_line_error(*evaluate(site / "empty.csv", *args))
    assert "nothing to evaluate" in message
