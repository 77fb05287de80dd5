"""The annotation loop end to end on tiny recordings: train from a table, scan other recordings,
review the detections with verdicts from their annotation table, retrain with `data.reviewed`,
and the retrained model fires less on what the review marked `no`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from helpers import run_cli

SR = 8000
SECONDS = 6.0
TONES = {"low": 500.0, "high": 1800.0, "foreign": 1100.0}  # the model learns the first two

RECIPE = """\
seed: 1
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}}
data: {{annotations: [{table}], {reviewed} val_fraction: 0.3}}
model: {{name: cnn6}}
augment: {{mixup_alpha: 0.0, specaugment: false}}
train: {{batch_size: 8, iterations: 24, eval_every: 12, ema_start: 100, lr: 0.003}}
"""


def write_recordings(folder: Path, seed: int, n: int, labels: tuple[str, ...]) -> Path:
    """Noise with 0.6 s tone calls of `labels` in turn, two of them overlapping per
    recording; a CSV table of every call."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * SR)) / SR
    rows = []
    for r in range(n):
        x = 0.02 * rng.standard_normal(t.shape)
        starts = [0.3, 1.5, 1.8, 3.2, 4.6]
        for k, start in enumerate(starts):
            label = labels[(k + r) % len(labels)]
            start += 0.1 * rng.random()
            inside = (t >= start) & (t < start + 0.6)
            x[inside] += 0.3 * np.sin(2 * np.pi * TONES[label] * t[inside])
            rows.append((f"rec{r}.wav", round(start, 4), round(start + 0.6, 4), label))
        sf.write(str(folder / f"rec{r}.wav"), x.astype(np.float32), SR, subtype="PCM_16")
    table = pd.DataFrame(rows, columns=["file", "start_time", "end_time", "label"])
    table.to_csv(folder / "boxes.csv", index=False)
    return folder / "boxes.csv"


def hits_on(detections: Path, negatives: pd.DataFrame) -> tuple[int, float]:
    """Detections overlapping a span the review marked `no`: how many, and their summed score."""
    found = pd.read_csv(detections)
    count, score = 0, 0.0
    for d in found.itertuples(index=False):
        same = negatives[negatives["file"] == d.file]
        if ((same["start_time"] < d.end_time) & (same["end_time"] > d.start_time)).any():
            count, score = count + 1, score + d.score
    return count, score


def test_review_and_retrain_lowers_detections_on_hard_negatives(tmp_path: Path) -> None:
    table = write_recordings(tmp_path / "train", 0, 4, ("low", "high"))
    field = tmp_path / "field"
    field_table = write_recordings(field, 1, 2, ("low", "foreign", "high"))
    targets = pd.read_csv(field_table)
    targets[targets["label"] != "foreign"].to_csv(field / "targets.csv", index=False)

    (tmp_path / "first.yaml").write_text(RECIPE.format(table=table, reviewed=""))
    code, output = run_cli("train", tmp_path / "first.yaml", "--out", tmp_path / "first")
    assert code == 0, output
    scan = tmp_path / "scan1" / "detections.csv"
    # A low threshold, so the review hears the doubtful detections too; one detection per
    # window, a window apart, so a window on a foreign call alone is judged alone and no two
    # review rows overlap.
    code, output = run_cli(
        "scan", field, "--model", tmp_path / "first" / "model.pt", "--out", scan,
        "--threshold", "0.2", "--hop", "1.0", "--no-merge",
    )  # fmt: skip
    assert code == 0, output
    code, output = run_cli(
        "review", scan, "--out", tmp_path / "review", "--strategy", "top", "--per-class", "50",
        "--verdicts-from", field / "targets.csv",
    )  # fmt: skip
    assert code == 0, output
    review = pd.read_csv(tmp_path / "review" / "review.csv")
    assert review["verdict"].notna().all()
    negatives = review[review["verdict"] == "no"]
    assert len(negatives) > 0 and (review["verdict"] == "yes").any()

    reviewed = f"reviewed: [{tmp_path / 'review' / 'review.csv'}],"
    (tmp_path / "second.yaml").write_text(RECIPE.format(table=table, reviewed=reviewed))
    code, output = run_cli("train", tmp_path / "second.yaml", "--out", tmp_path / "second")
    assert code == 0, output
    split = pd.read_csv(tmp_path / "second" / "split.csv")
    assert split["file"].str.contains("field").any()  # the reviewed recordings were used
    scan2 = tmp_path / "scan2" / "detections.csv"
    code, output = run_cli(
        "scan", field, "--model", tmp_path / "second" / "model.pt", "--out", scan2,
        "--threshold", "0.2", "--hop", "1.0", "--no-merge",
    )  # fmt: skip
    assert code == 0, output
    (before, before_score), (after, after_score) = (
        hits_on(scan, negatives),
        hits_on(scan2, negatives),
    )
    assert before >= len(negatives)  # each reviewed detection is one of the first scan's
    assert after <= before, (before, after)
    assert after_score < before_score, (before_score, after_score)
