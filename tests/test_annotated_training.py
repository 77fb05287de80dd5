"""Training on annotated recordings (`data.annotations`, `data.reviewed`): tiny models trained
end to end from a CSV and from Raven tables and scanned; what each source becomes (boxes, hard
negatives, labelled clips); and every bad input as one line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli

from bioclass.core.errors import BioclassError
from bioclass.recipe import load_recipe
from bioclass.training.annotated import load_windows

SR = 8000
SECONDS = 6.0
TONES = {"low": 500.0, "high": 1800.0}  # two "species"

RECIPE = """\
seed: 3
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}}
data: {{{data}, val_fraction: 0.3}}
model: {{name: cnn6}}
augment: {{mixup_alpha: 0.3, specaugment: true}}
train: {{batch_size: 8, iterations: {iterations}, eval_every: 2, ema_start: 2, ema_decay: 0.9}}
"""


def write_recipe(folder: Path, data: str, iterations: int = 4, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(RECIPE.format(data=data, iterations=iterations), encoding="utf-8")
    return path


def boxes_of(r: int) -> list[tuple[float, float, str]]:
    """Recording r's calls: both species, one pair overlapping in time."""
    shift = 0.3 * r
    return [
        (0.5 + shift, 1.1 + shift, "low"),
        (2.0 + shift, 2.8 + shift, "high"),
        (2.4 + shift, 3.0 + shift, "low"),  # overlaps the high call
        (4.2, 4.6 + shift / 2, "high"),
    ]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 6 s recordings at 8 kHz: noise and tone calls at known times; a CSV table of the
    boxes and a Raven table beside each recording."""
    root = tmp_path_factory.mktemp("annotated")
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(int(SECONDS * SR)) / SR
    for r in range(5):
        x = (0.02 * rng.standard_normal(t.shape)).astype(np.float32)
        raven = ["Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tAnnotation"]
        for k, (start, end, label) in enumerate(boxes_of(r)):
            inside = (t >= start) & (t < end)
            x[inside] += 0.3 * np.sin(2 * np.pi * TONES[label] * t[inside])
            rows.append((f"rec{r}.wav", start, end, label, f"site{r % 3}"))
            raven.append(f"{k + 1}\tSpectrogram 1\t1\t{start}\t{end}\t{label}")
        sf.write(str(root / f"rec{r}.wav"), x, SR, subtype="PCM_16")
        (root / "raven").mkdir(exist_ok=True)
        (root / "raven" / f"rec{r}.Table.1.selections.txt").write_text("\n".join(raven) + "\n")
    table = pd.DataFrame(rows, columns=["file", "start_time", "end_time", "label", "group"])
    table.to_csv(root / "boxes.csv", index=False)
    return root


@pytest.fixture(scope="module")
def trained(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    recipe = write_recipe(folder, f"annotations: [{recordings / 'boxes.csv'}]")
    code, output = run_cli("train", recipe, "--out", folder / "run")
    assert code == 0, output
    assert "multi-label windows" in output
    return folder / "run"


def test_trained_from_a_csv_table(trained: Path, recordings: Path) -> None:
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    assert ckpt["score_activation"] == "sigmoid" and ckpt["multi_label"] is True
    assert ckpt["classes"] == ["high", "low"]  # no background column: none was labelled
    assert set(ckpt["thresholds"]) == {"high", "low"}
    assert ckpt["calibration"]["method"] == "platt"
    metrics = pd.read_csv(trained / "metrics.csv")
    assert list(metrics.columns) == [
        "iteration", "weights", "train_loss", "map", "auc", "f1", "elapsed_s"
    ]  # fmt: skip
    assert metrics["map"].between(0, 1).all()
    split = pd.read_csv(trained / "split.csv")
    assert set(split["split"]) == {"train", "val"}
    # The table's group column: recordings of one site are on one side.
    for _, site in split.groupby("group"):
        assert site["split"].nunique() == 1
    best = (trained / "best.json").read_text()
    assert '"at_thresholds"' in best and '"metric": "map"' in best


def test_interrupted_window_run_resumes_to_the_same_result(
    trained: Path, recordings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bioclass.runtime.loop as loop

    real = loop.lr_factor

    def ctrl_c_during_step_3(iteration: int, *args: object) -> float:
        if iteration == 2:  # 0-based: Ctrl-C arrives during the 3rd step
            os.kill(os.getpid(), signal.SIGINT)
        return real(iteration, *args)

    monkeypatch.setattr(loop, "lr_factor", ctrl_c_during_step_3)
    recipe = write_recipe(tmp_path, f"annotations: [{recordings / 'boxes.csv'}]")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1 and "--resume" in output, output
    monkeypatch.setattr(loop, "lr_factor", real)
    code, output = run_cli("train", "--resume", tmp_path / "run")
    assert code == 0, output
    a = torch.load(trained / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    cols = ["iteration", "weights", "map", "auc"]
    pd.testing.assert_frame_equal(
        pd.read_csv(trained / "metrics.csv")[cols], pd.read_csv(tmp_path / "run/metrics.csv")[cols]
    )


def test_scan_and_evaluate_a_model_trained_on_windows(trained: Path, recordings: Path) -> None:
    out = trained.parent / "scan" / "det.csv"
    code, output = run_cli(
        "scan", recordings / "rec0.wav", "--model", trained / "model.pt", "--out", out,
        "--threshold", "0.0",
    )  # fmt: skip
    assert code == 0, output
    detections = pd.read_csv(out)
    assert len(detections) and set(detections["label"]) <= {"high", "low"}
    code, output = run_cli(
        "evaluate", trained / "model.pt", "--annotations", recordings / "boxes.csv",
        "--out", trained.parent / "eval" / "report.json", "--bootstrap", "0",
    )  # fmt: skip
    assert code == 0, output


def test_trained_from_raven_tables(recordings: Path, tmp_path: Path) -> None:
    data = f"annotations: [{recordings / 'raven'}], audio_root: {recordings}"
    recipe = write_recipe(tmp_path, data, iterations=2)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    assert len(split) == 5 and split["kind"].eq("annotated").all()


def load(folder: Path, data: str, *overrides: str):
    return load_windows(load_recipe(write_recipe(folder, data), overrides))


def part_of(data, file: Path):
    """The corpus part (training or validation) holding a recording, and its index."""
    path = str(file.resolve())
    for part in (data.train.corpus, data.val.corpus):
        rec = part.files.index(path)
        if rec in set(part.stretches["rec"]) or rec in set(part.negatives["rec"]):
            return part, rec
    raise AssertionError(f"{path} is in no part")


def test_windows_of_annotated_recordings(recordings: Path, tmp_path: Path) -> None:
    data = load(tmp_path, f"annotations: [{recordings / 'boxes.csv'}]")
    assert data.classes == ["high", "low"]
    assert len(data.train.corpus.boxes) + len(data.val.corpus.boxes) == 20
    # Recording 0: a window over 2.0-3.0 s holds the high call and the overlapping low call.
    part, rec = part_of(data, recordings / "rec0.wav")
    assert part.targets(rec, int(2.0 * SR)).tolist() == [1, 1]
    assert part.targets(rec, int(4.8 * SR)).tolist() == [0, 0]


def test_extent_limits_the_windows(recordings: Path, tmp_path: Path) -> None:
    extent = tmp_path / "extent.csv"
    rows = [f"{recordings / f'rec{r}.wav'},0,5" for r in range(5)]
    extent.write_text("file,start_time,end_time\n" + "\n".join(rows) + "\n")
    data = load(tmp_path, f"annotations: [{recordings / 'boxes.csv'}], extent: {extent}")
    for part in (data.train.corpus, data.val.corpus):
        assert (part.stretches["end_time"] == 5.0).all()
        assert (part.grid(800)["start"] + SR <= 5 * SR).all()


def review_folder(recordings: Path, folder: Path, rows: list[tuple]) -> Path:
    """A filled review folder: clips (copies of the recording's start) and review.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,start_time,end_time,label,score,clip,verdict"]
    for i, (rec, start, end, label, verdict) in enumerate(rows):
        clip = folder / label / f"{i:04d}.wav"
        clip.parent.mkdir(exist_ok=True)
        sf.write(str(clip), np.zeros(800, np.float32), SR)
        lines.append(
            f"{recordings / rec},{start},{end},{label},0.9,{clip.relative_to(folder)},{verdict}"
        )
    (folder / "review.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "review.csv"


def test_review_verdicts_become_positives_and_hard_negatives(
    recordings: Path, tmp_path: Path
) -> None:
    review = review_folder(
        recordings,
        tmp_path / "review",
        [
            ("rec0.wav", 0.5, 1.5, "low", "yes"),
            ("rec1.wav", 0.5, 1.5, "low", "no"),
            ("rec2.wav", 2.0, 3.0, "low", "high"),  # relabelled
            ("rec3.wav", 0.0, 1.0, "high", ""),  # not reviewed: skipped
            ("rec4.wav", 4.0, 5.0, "high", "YES"),
        ],
    )
    data = load(tmp_path, f"reviewed: [{review}], val_fraction: 0.5")
    both = pd.concat([data.train.corpus.boxes, data.val.corpus.boxes])
    names = [data.classes[c] for c in both.sort_values("rec")["cls"]]
    assert sorted(names) == ["high", "high", "low"]
    negatives = pd.concat([data.train.corpus.negatives, data.val.corpus.negatives])
    assert len(negatives) == 1
    table = data.split
    assert len(table) == 4 and set(table["kind"]) == {"reviewed"}
    no = table[table["label"] == "low: no"].iloc[0]
    assert no["file"].endswith("rec1.wav") and no["start_time"] == 0.5
    # The no-window is background: no class is positive in it.
    part, rec = part_of(data, Path(no["file"]))
    assert part.targets(rec, int(0.5 * SR)).tolist() == [0, 0]


def test_review_combined_with_annotations_and_clips(recordings: Path, tmp_path: Path) -> None:
    review = review_folder(recordings, tmp_path / "review", [("rec1.wav", 4.0, 5.0, "high", "no")])
    clips = tmp_path / "clips.csv"
    clips.write_text(
        "file,label,start_time,end_time,split\n"
        f"{recordings / 'rec0.wav'},low,0.5,1.1,train\n"
        f"{recordings / 'rec0.wav'},background,5.0,6.0,train\n"
        f"{recordings / 'rec2.wav'},low,0.5,1.5,test\n"
    )
    data = load(
        tmp_path,
        f"annotations: [{recordings / 'boxes.csv'}], reviewed: [{review}], labels_csv: {clips}",
    )
    # A labelled background clip adds the background class; a recording with test rows stays
    # out of training and validation, annotations and all.
    assert data.classes == ["background", "high", "low"]
    split = data.split
    test = split[split["split"] == "test"]
    assert set(test["file"]) == {str((recordings / "rec2.wav").resolve())}
    assert set(test["kind"]) == {"annotated", "clip"}
    rec2 = data.train.corpus.files.index(str((recordings / "rec2.wav").resolve()))
    for part in (data.train.corpus, data.val.corpus):
        assert rec2 not in set(part.stretches["rec"]) and rec2 not in set(part.boxes["rec"])
    kinds = split.groupby("kind").size().to_dict()
    assert kinds == {"annotated": 5, "clip": 3, "reviewed": 1}
    # rec0 is fixed to train by the label CSV, with its annotations.
    assert set(split.loc[split["file"].str.endswith("rec0.wav"), "split"]) == {"train"}


def one_line(folder: Path, data: str, *overrides: str) -> str:
    """The error `train` reports (exit 1, no traceback), checked to be one line; whitespace
    normalised (the terminal wraps long lines)."""
    recipe = write_recipe(folder, data)
    code, output = run_cli("train", recipe, "--out", folder / "run", *overrides)
    assert code == 1 and "Traceback" not in output, output
    with pytest.raises(BioclassError) as exc:
        load_windows(load_recipe(recipe, overrides[1::2]))  # the values of --set
    assert "\n" not in str(exc.value)
    return " ".join(output.split())


def test_missing_recording_names_the_paths_tried(recordings: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("file,start_time,end_time,label\ngone.wav,1,2,low\n")
    message = one_line(tmp_path, f"annotations: [{table}]")
    assert "t.csv, row 2" in message and "gone.wav" in message and str(tmp_path) in message


def test_bad_verdict_is_one_line(recordings: Path, tmp_path: Path) -> None:
    review = review_folder(recordings, tmp_path / "r", [("rec0.wav", 0.5, 1.5, "low", "maybe")])
    message = one_line(tmp_path, f"reviewed: [{review}]")
    assert "review.csv, row 2: verdict 'maybe' is not yes, no or a class" in message


def test_review_clip_moved_is_one_line(recordings: Path, tmp_path: Path) -> None:
    review = review_folder(recordings, tmp_path / "r", [("rec0.wav", 0.5, 1.5, "low", "yes")])
    (tmp_path / "r" / "low" / "0000.wav").unlink()
    message = one_line(tmp_path, f"reviewed: [{review}]")
    assert "row 2: clip not found" in message and "move the review folder whole" in message


def test_review_recording_moved_is_one_line(recordings: Path, tmp_path: Path) -> None:
    review = review_folder(recordings, tmp_path / "r", [("rec0.wav", 0.5, 1.5, "low", "yes")])
    text = review.read_text().replace(str(recordings / "rec0.wav"), "/nowhere/rec9.wav")
    review.write_text(text)
    message = one_line(tmp_path, f"reviewed: [{review}]")
    assert "row 2: audio file not found: '/nowhere/rec9.wav'" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("label_map: {lwo: x}", "data.label_map: 'lwo' is not a label of the annotations"),
        ("classes: [low]", "row 3: label 'high' is not one of data.classes (low)"),
    ],
)
def test_bad_mapping_and_classes(recordings: Path, tmp_path: Path, extra: str, expected: str):
    message = one_line(tmp_path, f"annotations: [{recordings / 'boxes.csv'}], {extra}")
    assert expected in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("loss.name=ce", "use loss.name auto or bce, not ce"),
        ("train.metric=accuracy", "train.metric accuracy needs one label per clip"),
        ("train.cv_folds=3", "train.cv_folds is not available with data.annotations"),
        ("data.min_overlap_fraction=0", "data.min_overlap_fraction must be in (0, 1]"),
    ],
)
def test_recipe_refuses_what_windows_cannot_do(
    recordings: Path, tmp_path: Path, override: str, expected: str
) -> None:
    message = one_line(tmp_path, f"annotations: [{recordings / 'boxes.csv'}]", "--set", override)
    assert expected in message


def test_label_map_renames_and_drops(recordings: Path, tmp_path: Path) -> None:
    data = load(
        tmp_path, f"annotations: [{recordings / 'boxes.csv'}], label_map: {{low: tone, high: null}}"
    )
    assert data.classes == ["tone"]
    assert len(data.train.corpus.boxes) + len(data.val.corpus.boxes) == 10


def test_union_needs_sigmoid_scores(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("augment: {mixup_alpha: 0.2, mixup_targets: union}\nloss: {name: ce}\n")
    with pytest.raises(BioclassError, match="mixup_targets union needs sigmoid scores"):
        load_recipe(recipe)


def test_nan_samples_in_a_recording_are_zeroed_and_listed(recordings: Path, tmp_path: Path) -> None:
    """A float recording with NaN/Inf samples trains with them set to 0 (a finite loss) and
    is listed in bad_files.csv as kept; one of nothing but NaN is refused in one line."""
    folder = tmp_path / "data"
    folder.mkdir()
    for r in range(5):
        x, _ = sf.read(str(recordings / f"rec{r}.wav"), dtype="float32")
        if r == 0:
            x[::100] = np.nan
            x[1::1000] = np.inf
        sf.write(str(folder / f"rec{r}.wav"), x, SR, subtype="FLOAT")
    table = pd.read_csv(recordings / "boxes.csv")
    table.to_csv(folder / "boxes.csv", index=False)
    recipe = write_recipe(tmp_path, f"annotations: [{folder / 'boxes.csv'}]")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "metrics.csv")["train_loss"]).all()
    bad = pd.read_csv(tmp_path / "run" / "bad_files.csv")
    assert [Path(f).name for f in bad["file"]] == ["rec0.wav"] and bad["kept"].all()
    assert "non-finite (NaN/Inf), replaced with 0" in bad["error"][0]

    sf.write(str(folder / "rec1.wav"), np.full(int(SECONDS * SR), np.nan, np.float32), SR,
             subtype="FLOAT")  # fmt: skip
    code, output = run_cli("train", recipe, "--out", tmp_path / "run2")
    assert code == 1 and "Traceback" not in output
    assert "rec1.wav" in output and "non-finite (NaN/Inf)" in output
