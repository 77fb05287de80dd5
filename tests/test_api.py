"""The Python API: load_model, predict (the numbers of `bioclass scan --scores`), scan, train,
evaluate and embed as functions, their errors, and their silence unless asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli, write_recipe

import bioclass
from bioclass.audio import AudioError
from bioclass.core.errors import BioclassError
from bioclass.synthetic.dataset import make_long_recording

CLASSES = ["background", "harmonic", "pulses"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short recordings at 16 kHz (the model's rate is 8 kHz: predict resamples), one of
    them stereo."""
    folder = tmp_path_factory.mktemp("api_recordings")
    rng = np.random.default_rng(11)
    make_long_recording(folder / "a.wav", rng, 7.0, 16000, 2, species=["harmonic", "pulses"])
    make_long_recording(folder / "b.flac", rng, 5.3, 16000, 1, species=["pulses"])
    mono, rate = sf.read(folder / "b.flac", dtype="float32")
    stereo = np.stack([mono, 0.5 * mono[::-1]], axis=1)
    sf.write(folder / "c_stereo.wav", stereo, rate)
    return folder


@pytest.fixture(scope="module")
def model(trained: Path) -> bioclass.Model:
    return bioclass.load_model(trained / "model.pt")


def test_import_bioclass_loads_neither_torch_nor_the_api() -> None:
    code = (
        "import sys, bioclass; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'pandas') "
        "or m.startswith('bioclass.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scan_and_embed_are_their_packages_and_their_functions() -> None:
    import bioclass.scan.runner as runner
    from bioclass.api import commands

    # `bioclass.scan` is the package (its modules reachable and patchable by name) and, called,
    # the API's scan; the same for embed.
    assert bioclass.scan.runner is runner and callable(bioclass.scan)
    assert bioclass.embed.EmbedOptions is commands.EmbedOptions and callable(bioclass.embed)
    with pytest.raises(BioclassError, match="give recordings"):
        bioclass.scan([], model="m.pt", out="d.csv")
    with pytest.raises(BioclassError, match="give recordings"):
        bioclass.embed("m.pt", [])


def test_load_model_exposes_what_the_model_was_trained_on(
    model: bioclass.Model, trained: Path
) -> None:
    checkpoint = torch.load(trained / "model.pt", map_location="cpu", weights_only=False)
    assert model.classes == list(checkpoint["classes"]) == CLASSES
    assert model.sample_rate == 8000
    assert model.window_seconds == pytest.approx(1.0)
    assert model.activation in ("sigmoid", "softmax")
    assert set(model.thresholds) == set(CLASSES)
    assert all(0.0 <= t <= 1.0 for t in model.thresholds.values())
    assert isinstance(model.module, torch.nn.Module) and not model.module.training
    # The module: (B, T) waveforms at the model's rate -> (B, C) logits, any batch size.
    with torch.no_grad():
        logits = model.module(torch.randn(3, 8000) * 0.1)
    assert logits.shape == (3, len(CLASSES))
    scores = model.scores(logits)
    assert scores.shape == (3, 3) and bool(((scores >= 0) & (scores <= 1)).all())
    assert "cnn6" in repr(model)


@pytest.mark.parametrize(("mode", "hop"), [("fast", 0.32), ("exact", 0.25)])
def test_predict_on_files_equals_scan_scores(
    model: bioclass.Model,
    trained: Path,
    recordings: Path,
    tmp_path: Path,
    mode: str,
    hop: float,
) -> None:
    scores_csv = tmp_path / "scores.csv"
    code, output = run_cli(
        "scan",
        recordings / "a.wav",
        recordings / "b.flac",
        "--model",
        trained / "model.pt",
        "--out",
        tmp_path / "detections.csv",
        "--hop",
        hop,
        "--mode",
        mode,
        "--scores",
        scores_csv,
    )
    assert code == 0, output
    written = pd.read_csv(scores_csv).drop(columns="channel")
    frame = model.predict([recordings / "a.wav", recordings / "b.flac"], hop=hop, mode=mode)
    assert list(frame.index.names) == ["file", "start_time", "end_time"]
    assert list(frame.columns) == CLASSES
    assert (frame.dtypes == np.float32).all()
    flat = frame.reset_index()
    assert flat["file"].tolist() == written["file"].tolist()
    np.testing.assert_array_equal(flat["start_time"], written["start_time"])
    np.testing.assert_array_equal(flat["end_time"], written["end_time"])
    # The CSV holds each float32 score's shortest repr: read back as float32 it is the same.
    np.testing.assert_array_equal(flat[CLASSES].to_numpy(), written[CLASSES].to_numpy("float32"))


def test_predict_on_arrays_equals_the_same_audio_in_a_file(
    model: bioclass.Model, recordings: Path
) -> None:
    wave, rate = sf.read(recordings / "b.flac", dtype="float32")
    from_file = model.predict(recordings / "b.flac", hop=0.5)
    from_array = model.predict(wave, sample_rate=rate, hop=0.5)
    np.testing.assert_array_equal(from_array.to_numpy(), from_file.to_numpy())
    assert from_array.index.get_level_values("file").unique().tolist() == ["array0"]
    np.testing.assert_array_equal(
        from_array.index.get_level_values("end_time"),
        from_file.index.get_level_values("end_time"),
    )
    # A tensor at the model's own rate, and names from a mapping.
    at_rate = torch.from_numpy(wave[::2].copy())
    named = model.predict({"site1": at_rate, "site2": wave[::2]}, sample_rate=8000)
    assert named.index.get_level_values("file").unique().tolist() == ["site1", "site2"]
    np.testing.assert_array_equal(named.loc["site1"].to_numpy(), named.loc["site2"].to_numpy())


def test_predict_channels_each_adds_a_channel_level(
    model: bioclass.Model, recordings: Path
) -> None:
    stereo, rate = sf.read(recordings / "c_stereo.wav", dtype="float32")
    from_array = model.predict(stereo.T, sample_rate=rate, channels="each")
    from_file = model.predict(recordings / "c_stereo.wav", channels="each")
    assert list(from_array.index.names) == ["file", "channel", "start_time", "end_time"]
    assert from_array.index.get_level_values("channel").unique().tolist() == [0, 1]
    np.testing.assert_array_equal(from_array.to_numpy(), from_file.to_numpy())
    with pytest.raises(BioclassError, match="looks like \\(samples, channels\\)"):
        model.predict(stereo, sample_rate=rate)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, r: m.predict(np.zeros(8000, dtype=np.float32)), "sample_rate"),
        (lambda m, r: m.predict(r / "a.wav", hop=0), "hop must be positive"),
        (lambda m, r: m.predict(r / "a.wav", hop=0.5, overlap=0.5), "hop or overlap"),
        (lambda m, r: m.predict(r / "a.wav", batch_size=0), "batch_size"),
        (lambda m, r: m.predict(r / "a.wav", hop_s=0.5), "unknown argument.*hop_s"),
        (lambda m, r: m.predict(r / "missing.wav"), "no such file"),
        (lambda m, r: m.predict(np.zeros((2, 3, 4)), sample_rate=8000), "1-D"),
        (lambda m, r: m.predict([], sample_rate=8000), "no inputs"),
        (lambda m, r: bioclass.load_model(r / "a.wav"), "a.wav"),
        (lambda m, r: bioclass.load_model(r / "none.pt"), "none.pt"),
        (lambda m, r: bioclass.scan(r, model=m, out=r / "x.csv", workers=0), "workers"),
        (lambda m, r: bioclass.scan(r, model=m, out=r / "x.csv", colour=1), "colour"),
        (lambda m, r: bioclass.train(r / "no_recipe.yaml"), "recipe not found"),
        (lambda m, r: bioclass.evaluate(m), "labelled data"),
    ],
)
def test_errors_are_bioclass_errors_and_nothing_is_printed(
    model: bioclass.Model,
    recordings: Path,
    capfd: pytest.CaptureFixture[str],
    call,
    match: str,
) -> None:
    with pytest.raises(BioclassError, match=match):
        call(model, recordings)
    assert capfd.readouterr() == ("", "")


def test_an_unreadable_recording_is_an_audio_error(
    model: bioclass.Model, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match="broken.wav"):
        model.predict(broken)
    assert capfd.readouterr() == ("", "")


def test_scan_returns_the_detections_it_wrote_silently_unless_asked(
    model: bioclass.Model, recordings: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "quiet" / "detections.csv"
    out.parent.mkdir()
    result = bioclass.scan(
        [recordings / "a.wav", recordings / "b.flac"],
        model=model,
        out=out,
        hop=0.5,
        threshold=0.0,
        keep_background=True,
        formats=("csv", "raven"),
    )
    assert capfd.readouterr() == ("", "")
    written = pd.read_csv(out)
    assert len(result.detections) == len(written) == result.summary.n_detections > 0
    assert result.detections["label"].tolist() == written["label"].tolist()
    np.testing.assert_allclose(result.detections["start_time"], written["start_time"])
    assert set(result.outputs) >= {"csv", "raven", "failed"}
    assert result.summary.n_scanned == 2
    loud = tmp_path / "loud" / "detections.csv"
    loud.parent.mkdir()
    bioclass.scan(recordings / "a.wav", model=model.path, out=loud, progress=True)
    assert "scanning" in capfd.readouterr().err


def test_train_with_overrides_writes_model_pt_silently(
    dataset: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    result = bioclass.train(
        recipe,
        out=tmp_path / "run",
        overrides={"train.iterations": 3, "train.eval_every": 3, "model.name": "cnn6"},
    )
    assert capfd.readouterr() == ("", "")
    assert (result.run_dir / "model.pt").is_file()
    assert result.history["iteration"].max() == 3  # the override, not the recipe's 6
    assert bioclass.load_model(result.run_dir / "model.pt").classes == CLASSES
    with pytest.raises(BioclassError, match="already holds files"):
        bioclass.train(recipe, out=tmp_path / "run", overrides=["train.iterations=3"])


def test_evaluate_gives_the_numbers_the_command_writes(
    trained: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = bioclass.evaluate(trained / "model.pt", trained / "split.csv", split="val")
    assert capfd.readouterr() == ("", "")
    code, output = run_cli(
        "evaluate", trained / "model.pt", trained / "split.csv", "--split", "val",
        "--out", tmp_path / "m.json",
    )  # fmt: skip
    assert code == 0, output
    written = json.loads((tmp_path / "m.json").read_text())
    assert result.metrics["uar"] == pytest.approx(written["uar"])
    assert len(result.predictions) == written["n_clips"]


def test_embed_returns_the_table_without_keeping_files(
    model: bioclass.Model, recordings: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = bioclass.embed(model, recordings / "a.wav", hop=0.5)
    assert capfd.readouterr() == ("", "")
    table = result.embeddings
    assert len(table) == result.summary.n_windows > 0
    assert list(table.columns[:6]) == ["file", "channel", "start_time", "end_time", "e000", "e001"]
    assert result.summary.outputs == {}


def test_predict_warns_and_shows_progress_only_when_asked(
    model: bioclass.Model, recordings: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A hop finer than the trunk's feature step makes a scan fall back to exact mode, with a
    # warning through the bioclass logger: muted by default, shown with progress=True.
    quiet = model.predict(recordings / "b.flac", hop=0.01)
    assert capfd.readouterr() == ("", "")
    loud = model.predict(recordings / "b.flac", hop=0.01, progress=True)
    err = capfd.readouterr().err
    assert "would blur windows" in err and "scoring" in err
    np.testing.assert_array_equal(quiet.to_numpy(), loud.to_numpy())
