"""`bioclass evaluate SOURCE --annotations` of a scan made with `--classes`, `--exclude-classes`
or `--top-n`: the filters are read from the scan's manifest, only the classes the scan wrote are
evaluated (the others' boxes are not misses), and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli_streams

SR = 8000
CLASSES = ["background", "bird", "frog"]


def _wav(path: Path, seconds: float) -> Path:
    sf.write(str(path), np.zeros(int(seconds * SR), np.float32), SR, subtype="PCM_16")
    return path


def _manifest(path: Path, **options) -> None:
    manifest = {
        "classes": CLASSES,
        "background_label": "background",
        "thresholds": {c: 0.5 for c in CLASSES},
        "keep_background": False,
        "merge": True,
        "min_gap_s": 0.0,
        "min_duration_s": 0.0,
        "classes_filter": None,
        "exclude_classes": [],
        "top_n": None,
        **options,
    }
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _evaluate(source: Path, boxes: Path) -> dict:
    code, stdout, stderr = run_cli_streams(
        "evaluate", source, "--annotations", boxes, "--bootstrap", 0, "--out", "-"
    )
    assert code == 0, stderr
    return json.loads(stdout)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """r1 (10 s): bird 1-2 (found), bird 5-6 (missed), frog 7-9; a scan with --classes bird
    wrote only the bird detections."""
    r1 = _wav(tmp_path / "r1.wav", 10.0)
    (tmp_path / "boxes.csv").write_text(
        "file,start_time,end_time,label\nr1.wav,1,2,bird\nr1.wav,5,6,bird\nr1.wav,7,9,frog\n",
        encoding="utf-8",
    )
    (tmp_path / "det.csv").write_text(
        f"file,start_time,end_time,label,score\n{r1},1.2,2.5,bird,0.9\n{r1},3,4,bird,0.6\n",
        encoding="utf-8",
    )
    return tmp_path


def test_classes_the_scan_did_not_write_are_not_misses(site: Path) -> None:
    _manifest(site / "det.manifest.json", classes_filter=["bird"])
    report = _evaluate(site / "det.csv", site / "boxes.csv")
    assert report["classes"] == ["bird"] and report["classes_written_by_scan"] == ["bird"]
    events = report["events"]
    assert list(events["per_class"]) == ["bird"]
    assert (events["all"]["tp"], events["all"]["fp"], events["all"]["fn"]) == (1, 1, 1)
    note = next(n for n in report["notes"] if "--classes/--exclude-classes" in n)
    assert "only the 1 class(es) it wrote are evaluated (bird)" in note
    assert "other class(es) (frog) are left out" in note
    assert any("did not write" in n and "frog (1)" in n for n in report["notes"])
    assert not any("does not know" in n for n in report["notes"])


def test_without_filters_every_class_counts(site: Path) -> None:
    # The same table from an unfiltered scan: the frog box is a miss (what a filtered scan's
    # report would have said, silently, before the manifest's filters were read).
    _manifest(site / "det.manifest.json")
    report = _evaluate(site / "det.csv", site / "boxes.csv")
    assert report["classes"] == ["bird", "frog"] and report["classes_written_by_scan"] is None
    assert report["events"]["per_class"]["frog"]["fn"] == 1
    assert report["events"]["all"]["fn"] == 2


def test_a_score_matrix_is_re_thresholded_with_the_scans_filters_and_top_n(
    tmp_path: Path,
) -> None:
    r1 = _wav(tmp_path / "r1.wav", 4.0)
    (tmp_path / "boxes.csv").write_text(
        "file,start_time,end_time,label\nr1.wav,0,1,bird\nr1.wav,0,1,frog\nr1.wav,2,3,frog\n",
        encoding="utf-8",
    )
    # Window 0: bird 0.8 and frog 0.6 both over 0.5; with --top-n 2 both label it.
    rows = [(0.1, 0.8, 0.6), (0.9, 0.05, 0.05), (0.2, 0.1, 0.7), (0.9, 0.05, 0.05)]
    lines = [f"{r1},,{k}.0,{k + 1}.0,{b},{bird},{frog}" for k, (b, bird, frog) in enumerate(rows)]
    matrix = tmp_path / "det.scores.csv"
    matrix.write_text(
        "file,channel,start_time,end_time,background,bird,frog\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    manifest = tmp_path / "det.manifest.json"
    _manifest(manifest, top_n=2, outputs={"scores": str(matrix)})
    report = _evaluate(matrix, tmp_path / "boxes.csv")
    frog = report["events"]["per_class"]["frog"]
    assert (frog["tp"], frog["fn"]) == (2, 0)  # window 0's second label found the first frog
    assert any("--top-n 2" in n for n in report["notes"]) and report["top_n"] == 2
    # The same scan with --exclude-classes frog: frog is neither detected nor missed.
    _manifest(manifest, top_n=2, exclude_classes=["frog"], outputs={"scores": str(matrix)})
    report = _evaluate(matrix, tmp_path / "boxes.csv")
    assert report["classes"] == ["bird"] and list(report["events"]["per_class"]) == ["bird"]
    assert list(report["windows"]["per_class"]) == ["bird"]
    assert report["events"]["all"]["fn"] == 0 and report["events"]["all"]["tp"] == 1


def test_a_manifest_whose_filters_name_no_class_of_its_model_is_one_line(site: Path) -> None:
    _manifest(site / "det.manifest.json", classes_filter=["owl"])
    code, _, stderr = run_cli_streams(
        "evaluate", site / "det.csv", "--annotations", site / "boxes.csv", "--out", "-"
    )
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1, stderr
    assert "det.manifest.json" in lines[0] and "'owl'" in lines[0]
