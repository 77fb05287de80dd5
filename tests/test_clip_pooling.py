"""Clip scores from every window: windowing like scan, the pooling methods, the recipe keys, the
checkpoint's record of them, and evaluate == the pooled window scores of a scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli

from bioclass.checkpoint import checkpoint_info, read_checkpoint
from bioclass.core.activation import Activation
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset, ClipSpec
from bioclass.inference.clips import ClipPooling, clip_windows, pool_scores, predict_clips
from bioclass.inference.stream import WindowPlan
from bioclass.recipe import recipe_from_dict


def test_short_clip_is_one_zero_padded_window() -> None:
    wave = np.arange(1, 7, dtype=np.float32)
    windows = clip_windows(wave, 10, ClipPooling())
    assert windows.shape == (1, 10)
    np.testing.assert_array_equal(windows[0], [1, 2, 3, 4, 5, 6, 0, 0, 0, 0])


def test_long_clip_windows_are_the_scans_windows() -> None:
    wave = np.arange(1, 24, dtype=np.float32)  # 23 samples, window 10, hop 5
    windows = clip_windows(wave, 10, ClipPooling("mean_prob", 0.5))
    plan = WindowPlan(sample_rate=1, window_samples=10, hop_samples=5)
    assert len(windows) == plan.n_windows(23) == 4
    np.testing.assert_array_equal(windows[1], wave[5:15])
    np.testing.assert_array_equal(windows[3], [16, 17, 18, 19, 20, 21, 22, 23, 0, 0])


def test_centre_pooling_keeps_the_old_centre_crop() -> None:
    wave = np.arange(20, dtype=np.float32)
    windows = clip_windows(wave, 10, ClipPooling("centre"))
    np.testing.assert_array_equal(windows, [np.arange(5, 15)])


def test_pooling_methods() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    probs = torch.softmax(logits, dim=1)
    assert torch.allclose(pool_scores(logits, Activation.SOFTMAX, "mean_prob"), probs.mean(0))
    assert torch.allclose(pool_scores(logits, Activation.SOFTMAX, "max_prob"), probs.amax(0))
    assert torch.allclose(
        pool_scores(logits, Activation.SIGMOID, "mean_logit"), torch.sigmoid(torch.tensor([1, 2.0]))
    )


def test_a_call_late_in_a_long_clip_counts() -> None:
    """The centre crop misses a call in the last second of a 4 s clip; pooled windows see it."""

    class Loudness(torch.nn.Module):
        # class 1's logit grows with the window's loudest sample: "a call is there"
        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            peak = wave.abs().amax(dim=1)
            return torch.stack([torch.zeros_like(peak), 10 * peak - 5], dim=1)

    rate, window = 100, 100  # 1 s windows
    wave = np.zeros(4 * rate, dtype=np.float32)
    wave[350:360] = 1.0  # the call, at 3.5 s
    table = pd.DataFrame({"file": ["x.wav"], "label": ["call"]})
    dataset = ClipDataset(table, ["quiet", "call"], ClipSpec(rate, window / rate), [wave])
    centre, _ = predict_clips(Loudness(), dataset, "softmax", pooling=ClipPooling("centre"))
    pooled, _ = predict_clips(Loudness(), dataset, "softmax", pooling=ClipPooling("max_prob"))
    assert centre[0, 1] < 0.01  # the centre second is quiet
    assert pooled[0, 1] > 0.99  # the windows over 3.5 s hear the call


def test_recipe_keys_are_validated() -> None:
    assert recipe_from_dict({}).train.pooling == "mean_prob"
    with pytest.raises(BioclassError, match="train.pooling must be one of .*did you mean"):
        recipe_from_dict({"train": {"pooling": "mean_probs"}})
    with pytest.raises(BioclassError, match=r"train.pooling_hop must be in \(0, 1\]"):
        recipe_from_dict({"train": {"pooling_hop": 0}})
    with pytest.raises(BioclassError, match="unknown clip pooling"):
        ClipPooling("median")


def test_checkpoint_records_pooling_and_old_ones_mean_centre(trained: Path) -> None:
    ckpt = read_checkpoint(trained / "model.pt")
    info = checkpoint_info(ckpt)
    assert (info.pooling, info.pooling_hop) == ("mean_prob", 0.5)
    for key in ("pooling", "pooling_hop"):
        del ckpt["recipe"]["train"][key]  # as written before pooling existed
    assert checkpoint_info(ckpt).pooling == "centre"


def test_evaluate_pools_the_windows_a_scan_scores(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    table = pd.read_csv(dataset / "labels.csv")
    lengths = np.array([sf.info(dataset / f).duration for f in table["file"]])
    clips = table[lengths > 1.2].head(4)  # longer than the 1 s window: two windows each
    assert len(clips) >= 2
    files = [str((dataset / f).resolve()) for f in clips["file"]]
    subset = tmp_path / "long_clips.csv"
    clips.assign(file=files).to_csv(subset, index=False)
    predictions = tmp_path / "pred.csv"
    code, output = run_cli(
        "evaluate", trained / "model.pt", subset, "--predictions", predictions, "--device", "cpu"
    )
    assert code == 0, output
    scores = tmp_path / "scores.csv"
    code, output = run_cli(
        "scan", *files, "--model", trained / "model.pt", "--out", tmp_path / "d.csv",
        "--scores", scores, "--mode", "exact", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, output
    windows = pd.read_csv(scores)
    assert (windows.groupby("file").size() == 2).all()
    pooled = windows.groupby("file")[["background", "harmonic", "pulses"]].mean()
    expected = pd.read_csv(predictions).set_index("file")
    for name in ("background", "harmonic", "pulses"):
        np.testing.assert_allclose(
            pooled.loc[expected.index, name], expected[f"score_{name}"], atol=2e-5
        )
    code, output = run_cli(
        "evaluate", trained / "model.pt", subset, "--predictions", predictions,
        "--pooling", "centre", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, output
    centre = pd.read_csv(predictions).set_index("file")
    assert not np.allclose(centre["score_pulses"], expected["score_pulses"])


def test_thresholds_are_fitted_on_the_scans_decision_per_clip(trained: Path) -> None:
    """A scan reports a class where any window reaches its threshold: the stored thresholds are
    fitted on the maximum over each validation clip's (calibrated) window scores."""
    from bioclass.checkpoint import load_model
    from bioclass.data.clips import decode_all
    from bioclass.evaluation.thresholds import fit_thresholds

    model, ckpt = load_model(trained / "model.pt")
    info = checkpoint_info(ckpt)
    split = pd.read_csv(trained / "split.csv")
    val = split[split["split"] == "val"].reset_index(drop=True)
    spec = ClipSpec(info.sample_rate, info.window_seconds, info.channel)
    waves, val, _ = decode_all(val, spec, max_bad_fraction=0.0)
    assert max(len(w) for w in waves) > spec.n_samples  # some clips span several windows
    dataset = ClipDataset(val, list(info.classes), spec, waves)
    # Calibrated as the scan will calibrate them (see tests/test_calibration.py).
    scores, targets = predict_clips(
        model, dataset, info.score_map(), pooling=ClipPooling("max_prob")
    )
    fitted = fit_thresholds(scores, targets, list(info.classes), info.background_label)
    stored = {c: v["threshold"] for c, v in ckpt["thresholds"].items()}
    assert stored == pytest.approx({c: v["threshold"] for c, v in fitted.items()})
    assert "max_prob over windows" in ckpt["thresholds_method"]


@pytest.mark.parametrize(
    ("validation", "thresholds"),
    [("mean_prob", "max_prob"), ("mean_logit", "max_prob"), ("centre", "centre")],
)
def test_threshold_pooling_follows_the_scans_rule(validation: str, thresholds: str) -> None:
    from bioclass.training.fit import threshold_pooling

    recipe = recipe_from_dict({"train": {"pooling": validation, "pooling_hop": 0.25}})
    assert threshold_pooling(recipe) == ClipPooling(thresholds, 0.25)
