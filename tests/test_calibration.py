"""Calibration: temperature and Platt scaling fitted at the end of training, the ECE, the
checkpoint's `calibration`, and the one ScoreMap through which scan and evaluate apply it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli

from bioclass.checkpoint import atomic_save, checkpoint_info, load_model, read_checkpoint
from bioclass.core.activation import Activation, Calibration, ScoreMap
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset, ClipSpec, decode_all
from bioclass.evaluation.calibration import (
    expected_calibration_error,
    fit_calibration,
    fit_platt,
    fit_temperature,
)
from bioclass.evaluation.thresholds import fit_thresholds
from bioclass.inference.clips import ClipPooling, clip_window_logits, pool_clips, pool_scores

# --- fitting ---------------------------------------------------------------------------------


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (6000, 5))
    p = np.exp(true - true.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    overconfident = true * 2.5  # the model's logits: 2.5 times too sharp
    assert fit_temperature(overconfident, labels) == pytest.approx(2.5, rel=0.05)
    # Through the whole fit (window logits of one-window clips): ECE falls.
    windows = list(torch.from_numpy(overconfident).float()[:, None, :])
    fit = fit_calibration(windows, labels, "softmax", "synthetic")
    assert fit.calibration.method == "temperature"
    assert fit.calibration.temperature == pytest.approx(2.5, rel=0.05)
    assert fit.after.ece < 0.03 < fit.before.ece


def test_platt_scaling_recovers_known_a_and_b() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, 40000)
    positive = rng.random(x.shape) < 1 / (1 + np.exp(-(0.5 * x - 1.0)))
    a, b = fit_platt(x, positive)
    assert a == pytest.approx(0.5, abs=0.03)
    assert b == pytest.approx(-1.0, abs=0.05)
    # No positives: nothing to fit, the logit stays as it is.
    assert fit_platt(x, np.zeros_like(positive)) == (1.0, 0.0)


# --- ECE -------------------------------------------------------------------------------------


def test_ece_on_hand_made_cases() -> None:
    # softmax, 10 clips at confidence 0.8 of which 8 right: calibrated.
    scores = np.tile([0.8, 0.2], (10, 1))
    targets = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(scores, targets, "softmax") == pytest.approx(0.0)
    # 10 clips at 0.9 with 6 right: overconfident by 0.3.
    scores = np.tile([0.9, 0.1], (10, 1))
    targets = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(scores, targets, "softmax") == pytest.approx(0.3)
    # Two bins: 0.95 with 1/2 right, 0.55 with 2/2 right -> (|0.5-0.95| + |1-0.55|) / 2.
    scores = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    targets = np.array([0, 1, 0, 1])
    assert expected_calibration_error(scores, targets, "softmax") == pytest.approx(0.45)
    # sigmoid: every (clip, class) pair pooled. Class 0 at 0.7 is right 2 of 4 times, class 1
    # at 0.1 is right 2 of 4 times: (4 |0.5 - 0.7| + 4 |0.5 - 0.1|) / 8 = 0.3.
    scores = np.tile([0.7, 0.1], (4, 1))
    targets = np.array([0, 0, 1, 1])
    assert expected_calibration_error(scores, targets, "sigmoid") == pytest.approx(0.3)


def test_calibration_maps_are_affine_so_they_commute_with_mean_logit_pooling() -> None:
    logits = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    platt = ScoreMap(Activation.SIGMOID, Calibration("platt", a=(0.5, 2.0, 1.0), b=(0, 1, -1)))
    want = torch.sigmoid(logits.mean(0) * torch.tensor([0.5, 2.0, 1.0]) + torch.tensor([0, 1, -1]))
    assert torch.allclose(pool_scores(logits, platt, "mean_logit"), want)
    scaled = ScoreMap(Activation.SOFTMAX, Calibration("temperature", temperature=2.0))
    assert torch.allclose(scaled(logits), torch.softmax(logits / 2, dim=-1))
    # A bare activation is uncalibrated.
    assert torch.allclose(
        pool_scores(logits, "softmax", "max_prob"), torch.softmax(logits, -1).amax(0)
    )


# --- the checkpoint ---------------------------------------------------------------------------


def test_checkpoint_round_trip(trained: Path, tmp_path: Path) -> None:
    ckpt = torch.load(trained / "model.pt", map_location="cpu", weights_only=True)
    stored = ckpt["calibration"]
    assert stored["method"] == "platt"  # the fixture trains with MixUp: sigmoid scores
    assert len(stored["a"]) == len(stored["b"]) == 3
    assert 0 <= stored["ece_after"] <= 1 and "validation clips" in stored["fitted_on"]
    info = checkpoint_info(ckpt)
    assert info.calibration == Calibration.from_dict(stored, 3)
    assert info.calibration.to_dict() == stored
    assert info.score_map().calibrated and not info.score_map("off").calibrated
    # best.json and the reliability diagram
    assert (trained / "calibration.png").stat().st_size > 0
    assert "calibration" in (trained / "best.json").read_text()
    damaged = {**ckpt, "calibration": {**stored, "a": [1.0]}}
    with pytest.raises(BioclassError, match="calibration is damaged"):
        checkpoint_info(damaged, "x.pt")


# --- scan and evaluate --------------------------------------------------------------------------


def _short_clips(dataset: Path, tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    table = pd.read_csv(dataset / "labels.csv")
    lengths = [sf.info(dataset / f).duration for f in table["file"]]
    clips = table[np.array(lengths) <= 1.0].head(5)  # one window each, as in evaluate
    subset = tmp_path / "clips.csv"
    clips.assign(file=[str((dataset / f).resolve()) for f in clips["file"]]).to_csv(
        subset, index=False
    )
    return clips, subset


def _evaluate(model: Path, subset: Path, out: Path, *extra: str) -> pd.DataFrame:
    code, output = run_cli(
        "evaluate", model, subset, "--predictions", out, "--device", "cpu", *extra
    )
    assert code == 0, output
    return pd.read_csv(out).set_index("file")


def _scan(model: Path, files: list[Path], tmp_path: Path, name: str, *extra: str) -> pd.DataFrame:
    scores = tmp_path / f"{name}.csv"
    code, output = run_cli(
        "scan", *files, "--model", model, "--out", tmp_path / f"{name}_d.csv",
        "--scores", scores, "--mode", "exact", "--device", "cpu", *extra,
    )  # fmt: skip
    assert code == 0, output
    return pd.read_csv(scores).set_index("file")


def test_calibrated_scan_equals_calibrated_evaluate_and_off_is_raw(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    clips, subset = _short_clips(dataset, tmp_path)
    files = [dataset / f for f in clips["file"]]
    classes = ["background", "harmonic", "pulses"]
    calibrated = _evaluate(trained / "model.pt", subset, tmp_path / "on.csv")
    raw = _evaluate(trained / "model.pt", subset, tmp_path / "off.csv", "--calibration", "off")
    scanned = _scan(trained / "model.pt", files, tmp_path, "scan_on")
    scanned_raw = _scan(trained / "model.pt", files, tmp_path, "scan_off", "--calibration", "off")
    for name in classes:
        np.testing.assert_allclose(
            scanned.loc[calibrated.index, name], calibrated[f"score_{name}"], atol=2e-5
        )
        np.testing.assert_allclose(
            scanned_raw.loc[raw.index, name], raw[f"score_{name}"], atol=2e-5
        )
    assert not np.allclose(calibrated["score_pulses"], raw["score_pulses"])
    # --calibration off is the bare sigmoid of the model's logits.
    model, ckpt = load_model(trained / "model.pt")
    info = checkpoint_info(ckpt)
    spec = ClipSpec(info.sample_rate, info.window_seconds, info.channel)
    table = pd.read_csv(subset)
    waves, table, _ = decode_all(table, spec, max_bad_fraction=0.0)
    dataset_ = ClipDataset(table, list(info.classes), spec, waves)
    logits = clip_window_logits(model, dataset_, ClipPooling(info.pooling, info.pooling_hop))
    want = torch.sigmoid(torch.cat(logits)).numpy()
    np.testing.assert_allclose(
        raw.loc[table["file"], [f"score_{c}" for c in classes]], want, atol=1e-5
    )


def test_thresholds_are_fitted_on_calibrated_scores(trained: Path) -> None:
    """The stored thresholds are the fit on calibrated max-over-windows clip scores."""
    model, ckpt = load_model(trained / "model.pt")
    info = checkpoint_info(ckpt)
    split = pd.read_csv(trained / "split.csv")
    val = split[split["split"] == "val"].reset_index(drop=True)
    spec = ClipSpec(info.sample_rate, info.window_seconds, info.channel)
    waves, val, _ = decode_all(val, spec, max_bad_fraction=0.0)
    dataset = ClipDataset(val, list(info.classes), spec, waves)
    logits = clip_window_logits(model, dataset, ClipPooling("max_prob", info.pooling_hop))
    classes, bg = list(info.classes), info.background_label

    def fitted(score_map: ScoreMap) -> dict[str, float | None]:
        scores = pool_clips(logits, score_map, "max_prob", len(classes))
        return {
            c: v["threshold"]
            for c, v in fit_thresholds(scores, dataset.targets, classes, bg).items()
        }

    stored = dict(info.fitted_thresholds)
    assert stored == pytest.approx(fitted(info.score_map()))
    assert "calibrated scores" in ckpt["thresholds_method"]


def test_thresholds_are_fitted_after_calibration_not_on_raw_scores() -> None:
    """On logits 2.5 times too sharp, raw and calibrated scores give different thresholds: the
    fit must give the calibrated ones (a fit on raw scores fails this test)."""
    from bioclass.recipe import recipe_from_dict
    from bioclass.training.fit import calibrate_and_fit_thresholds

    rng = np.random.default_rng(2)
    true = rng.normal(0, 1.5, (300, 3))
    p = np.exp(true) / np.exp(true).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    # Two windows per clip, so max-over-windows pooling is exercised.
    windows = [torch.tensor(np.stack([z, z + 0.3]) * 2.5, dtype=torch.float32) for z in true]
    recipe = recipe_from_dict({"train": {"pooling": "mean_prob"}})
    classes = ["background", "a", "b"]
    fit, thresholds, method = calibrate_and_fit_thresholds(
        windows, labels, classes, recipe, "softmax", "300 clips"
    )
    assert fit.calibration.temperature > 2  # the logits are too sharp: T well above 1
    got = {c: v["threshold"] for c, v in thresholds.items()}

    def fitted(score_map: ScoreMap | str) -> dict[str, float | None]:
        scores = pool_clips(windows, score_map, "max_prob", 3)
        fit_ = fit_thresholds(scores, labels, classes, "background")
        return {c: v["threshold"] for c, v in fit_.items()}

    assert got == pytest.approx(fitted(ScoreMap(Activation.SOFTMAX, fit.calibration)))
    raw = fitted("softmax")
    assert raw != pytest.approx(got, abs=0.01)
    assert "calibrated scores, max_prob over windows" in method


def test_a_checkpoint_without_calibration_scans_as_before(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    ckpt = read_checkpoint(trained / "model.pt")
    old = {k: v for k, v in ckpt.items() if k != "calibration"}
    assert old["format"] == 1
    atomic_save(old, tmp_path / "old.pt")
    assert checkpoint_info(old).calibration is None
    clips, _ = _short_clips(dataset, tmp_path)
    files = [dataset / f for f in clips["file"]]
    old_scan = _scan(tmp_path / "old.pt", files, tmp_path, "old")
    raw_scan = _scan(trained / "model.pt", files, tmp_path, "raw", "--calibration", "off")
    pd.testing.assert_frame_equal(old_scan, raw_scan)
    code, output = run_cli(
        "scan", *files, "--model", tmp_path / "old.pt", "--out", tmp_path / "x.csv",
        "--calibration", "on", "--device", "cpu",
    )  # fmt: skip
    assert code == 1 and "no calibration" in output


def test_shared_platt_keeps_decisions_and_per_class_may_not() -> None:
    from bioclass.evaluation.calibration import fit_calibration

    rng = np.random.default_rng(0)
    # Class 1's logits run hot: a per-class map pulls it down relative to class 0.
    targets = rng.integers(0, 2, 400)
    logits = rng.normal(0, 1, (400, 2)) + np.stack([2 * (targets == 0), 2 * (targets == 1) + 3], 1)
    windows = [torch.tensor(row[None, :], dtype=torch.float32) for row in logits]
    shared = fit_calibration(windows, targets, "sigmoid", "test").calibration
    assert len(set(shared.a)) == 1 and len(set(shared.b)) == 1 and shared.a[0] > 0
    per_class = fit_calibration(windows, targets, "sigmoid", "test", per_class=True).calibration
    assert per_class.b[0] != pytest.approx(per_class.b[1], abs=0.1)


def test_recipe_chooses_the_calibration() -> None:
    from bioclass.recipe import recipe_from_dict

    assert recipe_from_dict({}).train.calibration == "shared"
    assert recipe_from_dict({"train": {"calibration": "none"}}).train.calibration == "none"
    with pytest.raises(BioclassError, match="train.calibration must be one of"):
        recipe_from_dict({"train": {"calibration": "isotonic"}})
