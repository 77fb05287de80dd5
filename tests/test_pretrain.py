"""`bioclass pretrain` and `bioclass embed`: pair sampling, mix-back, monitoring metrics, the
run end to end, resume, and the encoder's use by train, scan and embed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli

from bioclass.pretrain.monitor import alignment, knn_classify, linear_probe, uniformity
from bioclass.pretrain.pairs import PairDataset, mix_back, pairs_per_epoch, patch_starts
from bioclass.synthetic.dataset import make_long_recording

RECIPE = """\
seed: 5
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}}
data: {{labels_csv: {csv}, val_fraction: 0.3, max_bad_fraction: 0.5}}
model: {{name: cnn6, dropout: 0.0, block_dropout: 0.0}}
train: {{batch_size: 6, iterations: 4, eval_every: 2}}
pretrain: {{patch_seconds: 0.5, knn_k: 5, probe_epochs: 20, loss: {loss}}}
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(9)
    for i in range(3):
        make_long_recording(
            folder / f"site{i}_20240501_0{i}0000.flac",
            rng,
            8.0,
            8000,
            n_calls=2,
            species=["harmonic", "pulses"],
        )
    (folder / "broken.wav").write_bytes(b"RIFF....not audio")
    return folder


def test_patch_sampling_modes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = patch_starts(10.0, 1.0, "non_overlapping", rng)
        assert abs(a - b) >= 1.0 - 1e-9 and min(a, b) >= 0 and max(a, b) <= 9.0
        a, b = patch_starts(10.0, 1.0, "same", rng)
        assert a == b
    starts = np.array([patch_starts(10.0, 1.0, "random", rng) for _ in range(500)])
    assert (np.abs(starts[:, 0] - starts[:, 1]) < 1.0).mean() > 0.1  # random may overlap
    assert patch_starts(0.5, 1.0, "non_overlapping", rng) == (0.0, 0.0)  # shorter than a patch


def test_mix_back_keeps_the_foreground_dominant() -> None:
    rng = np.random.default_rng(1)
    patch = rng.standard_normal(4000).astype(np.float32)
    background = 10 * rng.standard_normal(4000).astype(np.float32)
    for _ in range(50):
        mixed = mix_back(patch, background, 0.05, rng)
        added = mixed - patch
        assert 0 <= np.mean(added**2) <= 0.05 * np.mean(patch**2) + 1e-6
    silent = np.zeros(4000, np.float32)
    assert np.array_equal(mix_back(silent, background, 0.05, rng), silent)


def test_pairs_are_reproducible_patches_of_one_recording(archive: Path) -> None:
    recordings = pd.DataFrame(
        {"file": sorted(str(p) for p in archive.glob("*.flac")), "duration_s": 8.0}
    )
    data = PairDataset(recordings, 8000, 0.5, "non_overlapping", 0.0, None, seed=1)
    pair = data[17]
    assert pair.shape == (2, 4000) and pair.dtype == torch.float32
    assert torch.equal(
        pair, PairDataset(recordings, 8000, 0.5, "non_overlapping", 0.0, None, seed=1)[17]
    )
    assert not torch.equal(pair[0], pair[1])
    assert not torch.equal(pair, data[18])
    assert pairs_per_epoch(recordings, 0.5) == 3 * 8


def test_knn_probe_alignment_uniformity_on_known_geometry() -> None:
    rng = np.random.default_rng(2)
    centres = np.eye(3, 16) * 5
    train_y = np.repeat(np.arange(3), 20)
    test_y = np.repeat(np.arange(3), 5)
    train = centres[train_y] + 0.3 * rng.standard_normal((60, 16))
    test = centres[test_y] + 0.3 * rng.standard_normal((15, 16))
    assert (knn_classify(train, train_y, test, 5, 3).argmax(1) == test_y).all()
    assert (linear_probe(train, train_y, test, 3, 100, seed=0).argmax(1) == test_y).all()
    shuffled = rng.permutation(train_y)
    assert (knn_classify(train, shuffled, test, 5, 3).argmax(1) == test_y).mean() < 0.8
    same = rng.standard_normal((10, 8))
    assert alignment(same, same) == pytest.approx(0.0, abs=1e-6)
    assert alignment(same, -same) == pytest.approx(4.0, rel=1e-5)
    assert uniformity(np.ones((10, 8))) == pytest.approx(0.0, abs=1e-6)
    assert uniformity(rng.standard_normal((200, 8))) < -2.0  # spread points: far apart


@pytest.fixture(scope="module")
def pretrained(archive: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrain")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE.format(csv=dataset / "labels.csv", loss="ntxent"))
    code, output = run_cli("pretrain", archive, "--recipe", recipe, "--out", folder / "run")
    assert code == 0, output
    return folder / "run"


def test_pretrain_run_directory(pretrained: Path) -> None:
    for name in (
        "encoder.pt",
        "last.pt",
        "metrics.csv",
        "archive.csv",
        "bad_files.csv",
        "recipe.yaml",
        "learning_curve.png",
    ):
        assert (pretrained / name).is_file(), name
    metrics = pd.read_csv(pretrained / "metrics.csv")
    assert list(metrics["iteration"]) == [0, 2, 4]  # the untrained baseline first
    assert metrics[["knn_accuracy", "probe_uar", "alignment", "uniformity"]].notna().all().all()
    assert len(pd.read_csv(pretrained / "archive.csv")) == 3
    assert "broken.wav" in pd.read_csv(pretrained / "bad_files.csv")["file"].iloc[0]
    ckpt = torch.load(pretrained / "encoder.pt", weights_only=True)
    assert ckpt["kind"] == "encoder" and ckpt["classes"] == []


def test_acl_pretraining_runs(archive: Path, dataset: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "acl.yaml"
    recipe.write_text(RECIPE.format(csv=dataset / "labels.csv", loss="acl"))
    code, output = run_cli(
        "pretrain",
        archive,
        "--recipe",
        recipe,
        "--out",
        tmp_path / "acl",
        "--set",
        "data.labels_csv=",
        "--set",
        "train.iterations=2",
    )
    assert code == 0, output
    metrics = pd.read_csv(tmp_path / "acl" / "metrics.csv")
    assert np.isfinite(metrics["loss"].iloc[-1]) and "knn_accuracy" not in metrics


def test_interrupted_pretraining_resumes_exactly(
    pretrained: Path,
    archive: Path,
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bioclass.runtime.loop as loop

    real = loop.lr_factor

    def ctrl_c_in_step_3(iteration: int, *args: object) -> float:
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(iteration, *args)

    monkeypatch.setattr(loop, "lr_factor", ctrl_c_in_step_3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(csv=dataset / "labels.csv", loss="ntxent"))
    code, output = run_cli("pretrain", archive, "--recipe", recipe, "--out", tmp_path / "run")
    assert code == 1 and "--resume" in output
    monkeypatch.setattr(loop, "lr_factor", real)
    code, output = run_cli("pretrain", "--resume", tmp_path / "run")
    assert code == 0, output
    a = torch.load(pretrained / "encoder.pt", weights_only=True)["weights"]
    b = torch.load(tmp_path / "run" / "encoder.pt", weights_only=True)["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_encoder_feeds_train_embed_and_is_refused_by_scan(
    pretrained: Path, archive: Path, dataset: Path, tmp_path: Path
) -> None:
    from helpers import write_recipe

    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli(
        "train",
        recipe,
        "--out",
        tmp_path / "ft",
        "--set",
        f"model.init_from={pretrained / 'encoder.pt'}",
    )
    assert code == 0, output
    assert "initialised" in output
    out = tmp_path / "emb.parquet"
    code, output = run_cli("embed", archive, "--model", pretrained / "encoder.pt", "--out", out)
    assert code == 0, output
    table = pd.read_parquet(out)
    # The archive's names carry their start times: a datetime column, as scan writes.
    assert list(table.columns[:5]) == ["file", "channel", "start_time", "end_time", "datetime"]
    assert table.shape[1] == 5 + 512 and len(table) == 3 * 16  # 0.5 s windows, no overlap
    assert "1 file(s) could not be read" in output
    code, output = run_cli(
        "scan", archive, "--model", pretrained / "encoder.pt", "--out", tmp_path / "d.csv"
    )
    assert code == 1 and "is an encoder without classes" in output


def test_embed_fast_mode_falls_back_to_exact_for_short_windows(
    pretrained: Path, archive: Path, tmp_path: Path
) -> None:
    # CNN6 at 8 kHz, hop 160 steps 0.32 s per feature frame: a 0.5 s window spans under 2.
    exact, fast = tmp_path / "exact.parquet", tmp_path / "fast.parquet"
    code, output = run_cli("embed", archive, "--model", pretrained / "encoder.pt", "--out", exact)
    assert code == 0, output
    code, output = run_cli(
        "embed", archive, "--model", pretrained / "encoder.pt", "--out", fast, "--mode", "fast"
    )
    assert code == 0, output
    assert "scanning in exact mode" in output
    pd.testing.assert_frame_equal(pd.read_parquet(fast), pd.read_parquet(exact))


def test_pretrain_needs_audio(dataset: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(csv=dataset / "labels.csv", loss="ntxent"))
    (tmp_path / "empty").mkdir()
    code, output = run_cli("pretrain", tmp_path / "empty", "--recipe", recipe)
    assert code == 1 and "no audio files" in output
    code, output = run_cli("pretrain", "--recipe", recipe)
    assert code == 1 and "give the unlabelled audio" in output


def test_pretrain_refuses_a_mostly_broken_archive(
    archive: Path, dataset: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(csv=dataset / "labels.csv", loss="ntxent"))
    code, output = run_cli(
        "pretrain",
        archive,
        "--recipe",
        recipe,
        "--out",
        tmp_path / "x",
        "--set",
        "data.max_bad_fraction=0.1",
    )
    assert code == 1
    assert "1 of 4" in output and "broken.wav" in output and "Traceback" not in output
