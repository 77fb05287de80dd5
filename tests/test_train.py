"""End-to-end `bioclass train` / `evaluate` through the CLI on a tiny synthetic dataset."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import run_cli, write_recipe

from bioclass import __version__
from bioclass.checkpoint import FORMAT


def test_run_directory_holds_everything(trained: Path) -> None:
    for name in (
        "model.pt",
        "last.pt",
        "recipe.yaml",
        "metrics.csv",
        "split.csv",
        "best.json",
        "learning_curve.png",
        "confusion_matrix.png",
    ):
        assert (trained / name).is_file(), name
    history = pd.read_csv(trained / "metrics.csv")
    # Validations at 3 and 6; EMA weights are validated once averaging has begun (after 3).
    assert list(zip(history["iteration"], history["weights"], strict=True)) == [
        (3, "raw"),
        (6, "raw"),
        (6, "ema"),
    ]
    assert history["uar"].between(0, 1).all()
    split = pd.read_csv(trained / "split.csv")
    sides = split.groupby("group")["split"].nunique()
    assert (sides == 1).all(), "a recording group sits on both sides of the split"


def test_checkpoint_is_plain_data(trained: Path) -> None:
    ckpt = torch.load(trained / "model.pt", map_location="cpu", weights_only=True)
    assert ckpt["format"] == FORMAT
    assert ckpt["bioclass_version"] == __version__
    assert ckpt["classes"] == ["background", "harmonic", "pulses"]
    assert ckpt["frontend"]["sample_rate"] == 8000 and ckpt["frontend"]["n_mels"] == 32
    assert ckpt["recipe"]["train"]["iterations"] == 6
    assert ckpt["score_activation"] == "sigmoid"  # MixUp on -> BCE -> sigmoid scores
    best = json.loads((trained / "best.json").read_text())
    assert ckpt["use_ema"] == (best["weights"] == "ema")


def test_evaluate_reproduces_training_validation(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    # Training validated (and selected) on raw scores; calibration came after. (Calibrated, a
    # clip of several windows pooled by mean_prob can change its top class: the mean of
    # transformed scores is not the transform of their mean.)
    code, output = run_cli(
        "evaluate", trained / "model.pt", trained / "split.csv", "--split", "val", "--out", out,
        "--calibration", "off",
    )  # fmt: skip
    assert code == 0, output
    metrics = json.loads(out.read_text())
    assert metrics["calibrated"] is False
    best = json.loads((trained / "best.json").read_text())["metrics"]
    assert metrics["n_clips"] == best["n_clips"]
    assert metrics["uar"] == pytest.approx(best["uar"], abs=1e-9)
    assert metrics["map"] == pytest.approx(best["map"], abs=1e-6)
    assert metrics["confusion"] == best["confusion"]


def test_training_is_deterministic(trained: Path, dataset: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "again")
    assert code == 0, output
    a = torch.load(trained / "last.pt", weights_only=True)["weights"]
    b = torch.load(tmp_path / "again" / "last.pt", weights_only=True)["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    cols = ["iteration", "weights", "train_loss", "uar", "map"]
    pd.testing.assert_frame_equal(
        pd.read_csv(trained / "metrics.csv")[cols],
        pd.read_csv(tmp_path / "again/metrics.csv")[cols],
    )


def test_interrupted_run_resumes_to_the_same_result(
    trained: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bioclass.runtime.loop as loop

    real = loop.lr_factor

    def ctrl_c_during_step_4(iteration: int, *args: object) -> float:
        if iteration == 3:  # 0-based: the 4th step; Ctrl-C arrives mid-step
            os.kill(os.getpid(), signal.SIGINT)
        return real(iteration, *args)

    monkeypatch.setattr(loop, "lr_factor", ctrl_c_during_step_4)
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1, output
    assert "--resume" in output
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["iteration"] == 4  # the step in flight was finished, then saved
    monkeypatch.setattr(loop, "lr_factor", real)

    code, output = run_cli("train", "--resume", tmp_path / "run")
    assert code == 0, output
    a = torch.load(trained / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert all(torch.equal(a["ema_weights"][k], b["ema_weights"][k]) for k in a["ema_weights"])
    # Every column but the wall time: the running loss of steps 4-6, begun before the stop, is
    # saved with the state, so iteration 6's train_loss is their mean as without the stop.
    pd.testing.assert_frame_equal(
        pd.read_csv(trained / "metrics.csv").drop(columns="elapsed_s"),
        pd.read_csv(tmp_path / "run/metrics.csv").drop(columns="elapsed_s"),
    )


def test_corrupt_clip_is_skipped_and_listed(dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    table = pd.read_csv(data / "labels.csv")
    broken = data / table["file"].iloc[0]
    broken.write_bytes(b"this is not audio")
    recipe = write_recipe(tmp_path, data / "labels.csv", max_bad=0.1)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "1 unreadable" in output
    bad = pd.read_csv(tmp_path / "run" / "bad_files.csv")
    assert bad["file"].tolist() == [str(broken)]

    strict = write_recipe(tmp_path, data / "labels.csv", max_bad=0.0)
    code, output = run_cli("train", strict, "--out", tmp_path / "run2")
    assert code == 1
    assert "cannot be read" in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r.replace("batch_size", "batchsize"), "did you mean 'batch_size'"),
        (lambda r: r.replace("eval_every: 3", "eval_every: often"), "train.eval_every must be"),
        (lambda r: r.replace("cnn6", "cnn7"), "unknown model 'cnn7'"),
    ],
)
def test_bad_recipe_is_one_clear_line(dataset: Path, tmp_path: Path, edit, expected: str) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    recipe.write_text(edit(recipe.read_text()))
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1
    assert expected in output
    assert "Traceback" not in output


def test_missing_data_path(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tmp_path / "nowhere.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1
    assert "labels CSV not found" in output and "nowhere.csv" in output


def test_run_directory_is_not_overwritten(trained: Path, dataset: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", trained)
    assert code == 1
    assert "already holds files" in output


def test_resume_without_state(tmp_path: Path) -> None:
    code, output = run_cli("train", "--resume", tmp_path)
    assert code == 1
    assert "nothing to resume" in output


def test_future_checkpoint_format_is_refused(trained: Path, dataset: Path, tmp_path: Path) -> None:
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    ckpt["format"] = FORMAT + 1
    torch.save(ckpt, tmp_path / "future.pt")
    code, output = run_cli("evaluate", tmp_path / "future.pt", dataset / "labels.csv")
    assert code == 1
    assert "newer than this bioclass" in output


def test_evaluate_rejects_unknown_label(trained: Path, dataset: Path, tmp_path: Path) -> None:
    table = pd.read_csv(dataset / "labels.csv")
    table["file"] = [str(dataset / f) for f in table["file"]]
    table.loc[2, "label"] = "pulsess"
    table.to_csv(tmp_path / "labels.csv", index=False)
    code, output = run_cli("evaluate", trained / "model.pt", tmp_path / "labels.csv")
    assert code == 1
    assert "row 4" in output and "did you mean 'pulses'" in output


def test_models_lists_registry() -> None:
    code, output = run_cli("models", "--classes", "5")
    assert code == 0, output
    for name in ("cnn6", "cnn10", "cnn14", "mobilenetv1", "resnet22", "wideresnet28_2"):
        assert name in output
    assert "4.95 M" in output  # CNN10 with 5 classes, as in the paper


def test_installed_script_runs() -> None:
    exe = shutil.which("bioclass")
    command = [exe] if exe else [sys.executable, "-m", "bioclass"]
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert __version__ in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "bioclass", "train", "missing.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "recipe not found: missing.yaml" in done.stderr
    assert "Traceback" not in done.stderr
