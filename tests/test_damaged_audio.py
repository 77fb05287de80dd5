"""Damaged audio: float files with NaN/Inf samples and WAVs cut short of their header, in every
command that reads audio (scan fast and exact, train, evaluate, embed, pretrain)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import run_cli, write_recipe

from bioclass.audio import AudioError, decode_audio, read_audio
from bioclass.audio.header import promised_frames
from bioclass.audio.probe import BAD_COLUMNS, check_finite
from bioclass.core.errors import BioclassError
from bioclass.inference.score import FileScores, StreamScores
from bioclass.inference.stream import RecordingReader
from bioclass.synthetic.dataset import make_long_recording

SR = 8000
CLASSES = ["background", "harmonic", "pulses"]  # the `trained` fixture's
# Sample positions (at 8 kHz) of the NaN, +Inf and -Inf samples planted in the damaged file.
NONFINITE_AT = {"nan": [1000, 30000, 52000], "posinf": [41000], "neginf": [70000]}
N_NONFINITE = sum(len(v) for v in NONFINITE_AT.values())


def plant_nonfinite(wave: np.ndarray) -> np.ndarray:
    out = wave.astype(np.float32).copy()
    out[NONFINITE_AT["nan"]] = np.nan
    out[NONFINITE_AT["posinf"]] = np.inf
    out[NONFINITE_AT["neginf"]] = -np.inf
    return out


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean.wav (10 s float), nan.wav (the same with 5 NaN/Inf samples), allnan.wav (3 s, every
    sample NaN) and truncated.wav (a 16-bit 10 s WAV whose second half was cut off)."""
    folder = tmp_path_factory.mktemp("damaged")
    source = folder / "source.wav"
    make_long_recording(source, np.random.default_rng(4), 10.0, SR, 3, species=CLASSES[1:])
    wave = sf.read(source, dtype="float32")[0]
    source.unlink()
    sf.write(folder / "clean.wav", wave, SR, subtype="FLOAT")
    sf.write(folder / "nan.wav", plant_nonfinite(wave), SR, subtype="FLOAT")
    sf.write(folder / "allnan.wav", np.full(3 * SR, np.nan, np.float32), SR, subtype="FLOAT")
    sf.write(folder / "truncated.wav", wave, SR, subtype="PCM_16")
    data = (folder / "truncated.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: 44 + 2 * 5 * SR])  # header + 5 s of samples
    return folder


# --- decoding -----------------------------------------------------------------------------------


def test_nonfinite_samples_are_set_to_zero_and_counted(recordings: Path) -> None:
    clean = read_audio(recordings / "clean.wav", SR)
    decoded = decode_audio(recordings / "nan.wav", SR)
    assert decoded.n_nonfinite == N_NONFINITE and decoded.n_samples == 10 * SR
    assert np.isfinite(decoded.wave).all()
    bad = sum(NONFINITE_AT.values(), [])
    assert (decoded.wave[bad] == 0).all()
    others = np.setdiff1d(np.arange(len(clean)), bad)
    np.testing.assert_array_equal(decoded.wave[others], clean[others])
    assert decoded.note == "5 of 80000 samples non-finite (NaN/Inf), replaced with 0"
    # Resampled (soxr would spread a NaN over its whole filter length): still finite.
    assert np.isfinite(read_audio(recordings / "nan.wav", 16000)).all()
    assert decode_audio(recordings / "clean.wav", SR).note is None


def test_a_file_of_nothing_but_nonfinite_samples_is_refused(recordings: Path) -> None:
    with pytest.raises(AudioError, match=r"all 24000 samples are non-finite \(NaN/Inf\)"):
        read_audio(recordings / "allnan.wav", SR)
    with pytest.raises(AudioError, match="non-finite"):
        check_finite(recordings / "allnan.wav")
    # An excerpt is judged on its own samples.
    excerpt = decode_audio(recordings / "nan.wav", SR, start_seconds=0.125, end_seconds=0.1375)
    assert (excerpt.n_samples, excerpt.n_nonfinite) == (100, 1)


def test_only_the_channel_in_use_counts(tmp_path: Path) -> None:
    stereo = np.zeros((SR, 2), np.float32)
    stereo[:, 1] = np.nan  # the right channel is all NaN, the left one silent but fine
    sf.write(tmp_path / "st.wav", stereo, SR, subtype="FLOAT")
    left = decode_audio(tmp_path / "st.wav", SR, channel=0)
    assert left.n_nonfinite == 0 and left.note is None
    mix = decode_audio(tmp_path / "st.wav", SR)
    assert mix.n_nonfinite == SR and mix.n_samples == 2 * SR and not mix.all_nonfinite
    with pytest.raises(AudioError, match="non-finite"):
        read_audio(tmp_path / "st.wav", SR, channel=1)
    assert check_finite(tmp_path / "st.wav", channel=0).n_nonfinite == 0
    assert check_finite(tmp_path / "st.wav").n_nonfinite == SR


def test_integer_files_are_not_read_by_the_up_front_check(recordings: Path) -> None:
    assert check_finite(recordings / "truncated.wav") is None  # 16-bit: cannot hold NaN
    assert check_finite(recordings / "clean.wav").n_nonfinite == 0


# --- truncated WAV ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [
        ("WAV", "PCM_16"),
        ("WAV", "FLOAT"),
        ("WAVEX", "PCM_24"),
        ("RF64", "PCM_16"),
        ("AIFF", "PCM_16"),
    ],
)
def test_header_promise_is_read_from_the_header(tmp_path: Path, fmt: str, subtype: str) -> None:
    path = tmp_path / "full.bin"
    sf.write(path, np.zeros((SR, 2), np.float32), SR, format=fmt, subtype=subtype)
    assert promised_frames(path) == SR
    cut = tmp_path / "cut.bin"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert promised_frames(cut) == SR  # the header still says 1 s
    assert sf.info(str(cut)).frames < SR  # where libsndfile says what is there


def test_header_promise_is_unknown_where_the_header_does_not_say(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.flac", np.zeros(SR, np.float32), SR)
    assert promised_frames(tmp_path / "a.flac") is None
    sf.write(tmp_path / "a.wav", np.zeros(SR, np.float32), SR, subtype="PCM_16")
    data = bytearray((tmp_path / "a.wav").read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"  # a recorder's placeholder: never finalised
    (tmp_path / "b.wav").write_bytes(bytes(data))
    assert promised_frames(tmp_path / "b.wav") is None
    (tmp_path / "c.wav").write_bytes(b"RIFF")
    assert promised_frames(tmp_path / "c.wav") is None


def test_reader_flags_a_wav_cut_short_of_its_header(recordings: Path) -> None:
    with RecordingReader(recordings / "truncated.wav", SR, "mix") as reader:
        reader.available_until(20 * SR)
        assert reader.finished and reader.truncated
        assert reader.n_samples == 5 * SR
        assert reader.expected_seconds == pytest.approx(10.0)
    with RecordingReader(recordings / "clean.wav", SR, "mix") as reader:
        reader.available_until(20 * SR)
        assert reader.finished and not reader.truncated


# --- scan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_scan_replaces_nonfinite_samples_and_reports_damage(
    trained: Path, recordings: Path, tmp_path: Path, mode: str
) -> None:
    out, scores = tmp_path / "det.csv", tmp_path / "scores.csv"
    code, output = run_cli(
        "scan", recordings, "--model", trained / "model.pt", "--out", out, "--scores", scores,
        "--mode", mode, "--keep-background", "--threshold", "0",
    )  # fmt: skip
    assert code == 0, output
    windows = pd.read_csv(scores)
    assert np.isfinite(windows[CLASSES].to_numpy(dtype=float)).all(), "an empty score cell"
    by_file = {Path(f).name: g for f, g in windows.groupby("file")}
    assert set(by_file) == {"clean.wav", "nan.wav", "truncated.wav"}
    assert len(by_file["nan.wav"]) == len(by_file["clean.wav"]) == 19  # 1 s windows, hop 0.5 s
    # Five zeroed samples out of 80 000 barely move a window's scores.
    np.testing.assert_allclose(
        by_file["nan.wav"][CLASSES].to_numpy(), by_file["clean.wav"][CLASSES].to_numpy(), atol=0.02
    )
    assert by_file["truncated.wav"]["end_time"].max() == pytest.approx(5.0)

    failed = pd.read_csv(tmp_path / "det.failed.csv")
    assert [Path(f).name for f in failed["file"]] == ["allnan.wav"]
    assert "non-finite (NaN/Inf)" in failed["error"].iloc[0]
    manifest = json.loads((tmp_path / "det.manifest.json").read_text())
    notes = {Path(d["file"]).name: d["note"] for d in manifest["files_damaged"]}
    assert notes["nan.wav"] == "5 of 80000 samples non-finite (NaN/Inf), replaced with 0"
    assert notes["truncated.wav"] == (
        "truncated: header says 10.00 s, file holds 5.00 s; scanned what is there"
    )
    assert set(notes) == {"nan.wav", "truncated.wav"}
    assert manifest["files_failed"] == 1
    assert "2 damaged file(s)" in " ".join(output.split())


def test_a_model_giving_nan_fails_the_file_not_an_empty_row(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    checkpoint = torch.load(trained / "model.pt", weights_only=True)
    for key in ("weights", "ema_weights"):
        if checkpoint.get(key) is not None:
            checkpoint[key]["fc.bias"][0] = float("nan")
    broken = tmp_path / "broken.pt"
    torch.save(checkpoint, broken)
    scores = tmp_path / "scores.csv"
    code, output = run_cli(
        "scan", recordings / "clean.wav", "--model", broken, "--out", tmp_path / "d.csv",
        "--scores", scores,
    )  # fmt: skip
    assert code == 1, output  # the only input failed: the scan says so
    assert "none of the 1 file(s) could be scanned" in output
    assert pd.read_csv(scores).empty
    failed = pd.read_csv(tmp_path / "d.failed.csv")
    assert "the model gave non-finite scores (NaN/Inf) for 19 of 19 windows" in failed["error"][0]


def test_a_stored_part_with_nan_scores_is_scored_again(tmp_path: Path) -> None:
    from bioclass.scan.journal import file_key, save_result
    from bioclass.scan.work import score_or_resume

    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(SR, np.float32), SR)
    parts = tmp_path / "parts"
    parts.mkdir()
    params = {"p": 1}
    times = np.array([0.0])

    def result(value: float) -> FileScores:
        scores = np.full((1, 2), value, np.float32)
        return FileScores([StreamScores(None, times, times + 1, scores, 1.0)])

    save_result(parts, file_key(audio, params), result(float("nan")))
    calls = []

    def score(path, should_stop):
        calls.append(path)
        return result(0.5)

    outcome = score_or_resume(audio, parts, params, score, lambda: False)
    assert calls == [audio] and not outcome.resumed
    assert outcome.result.streams[0].scores[0, 0] == 0.5


def test_output_assembly_refuses_to_write_nan_scores(tmp_path: Path) -> None:
    from bioclass.scan.assemble import stored_scores
    from bioclass.scan.journal import save_result
    from bioclass.scan.work import FileOutcome

    times = np.array([0.0, 0.5])
    scores = np.array([[0.1, 0.9], [np.nan, 0.2]], np.float32)
    save_result(tmp_path, "k", FileScores([StreamScores(None, times, times + 1, scores, 1.5)]))
    with pytest.raises(BioclassError, match="internal error.*NaN/Inf"):
        stored_scores(FileOutcome(tmp_path / "a.wav", "k"), tmp_path)


# --- embed --------------------------------------------------------------------------------------


def test_embed_reports_damage_and_refuses_an_all_nan_file(
    trained: Path, recordings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "emb.csv"
    code, output = run_cli("embed", recordings, "--model", trained / "model.pt", "--out", out)
    assert code == 0, output
    table = pd.read_csv(out)
    vectors = table.filter(regex=r"^e\d+$").to_numpy(dtype=float)
    assert vectors.shape[1] == 512 and np.isfinite(vectors).all()
    assert {Path(f).name for f in table["file"]} == {"clean.wav", "nan.wav", "truncated.wav"}
    failed = pd.read_csv(tmp_path / "emb.failed.csv")
    assert [Path(f).name for f in failed["file"]] == ["allnan.wav"]
    text = " ".join(output.split())
    assert "2 damaged file(s)" in text and "non-finite (NaN/Inf)" in text


# --- labelled clips: train, evaluate ------------------------------------------------------------


def damaged_labels(dataset: Path, folder: Path) -> Path:
    """A copy of the session's labelled set whose first two clips are float WAVs: one with a
    NaN every 50 samples, one all NaN."""
    shutil.copytree(dataset, folder)
    table = pd.read_csv(folder / "labels.csv")
    for row, name in ((0, "nan.wav"), (1, "allnan.wav")):
        wave = sf.read(folder / table.loc[row, "file"], dtype="float32")[0]
        wave[::50] = np.nan
        if name == "allnan.wav":
            wave[:] = np.nan
        sf.write(folder / name, wave, SR, subtype="FLOAT")
        table.loc[row, "file"] = name
    table.to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


def test_train_keeps_a_damaged_clip_and_lists_it_in_bad_files(
    dataset: Path, tmp_path: Path
) -> None:
    labels = damaged_labels(dataset, tmp_path / "data")
    n_nan = int(np.ceil(sf.info(str(tmp_path / "data" / "nan.wav")).frames / 50))
    recipe = write_recipe(tmp_path, labels, max_bad=0.1)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "diverged" not in output
    bad = pd.read_csv(tmp_path / "run" / "bad_files.csv")
    assert list(bad.columns) == BAD_COLUMNS
    rows = {Path(f).name: r for f, r in zip(bad["file"], bad.itertuples(), strict=True)}
    assert set(rows) == {"nan.wav", "allnan.wav"}
    assert rows["nan.wav"].kept and f"{n_nan} of " in rows["nan.wav"].error
    assert "non-finite (NaN/Inf), replaced with 0" in rows["nan.wav"].error
    assert not rows["allnan.wav"].kept and "non-finite (NaN/Inf)" in rows["allnan.wav"].error
    text = " ".join(output.split())
    assert "1 unreadable clip(s) skipped, 1 damaged clip(s) kept" in text
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "metrics.csv")["train_loss"]).all()

    # Refused for too many bad clips: bad_files.csv is written all the same.
    strict = write_recipe(tmp_path, labels, max_bad=0.0)
    code, output = run_cli("train", strict, "--out", tmp_path / "run2")
    assert code == 1 and "Traceback" not in output
    assert "cannot be read" in output and "bad_files.csv" in output
    refused = pd.read_csv(tmp_path / "run2" / "bad_files.csv")
    assert list(refused.columns) == BAD_COLUMNS and len(refused) == 2
    # The refused run left only that list: the same --out takes the corrected run.
    assert [p.name for p in (tmp_path / "run2").iterdir()] == ["bad_files.csv"]
    lenient = write_recipe(tmp_path, labels, max_bad=0.1)
    code, output = run_cli("train", lenient, "--out", tmp_path / "run2")
    assert code == 0, output
    assert (tmp_path / "run2" / "model.pt").is_file()


@pytest.mark.parametrize("cache", [True, False])
def test_prepared_data_reports_nonfinite_clips(folder_dataset, cache: bool) -> None:
    from bioclass.data.prepare import prepare_data
    from bioclass.recipe import recipe_from_dict

    root = folder_dataset({"owl": 10, "wren": 10}, seconds=0.3, sample_rate=SR)
    wave = sf.read(root / "owl" / "owl_00.wav", dtype="float32")[0]
    wave[[3, 9]] = np.nan
    (root / "owl" / "owl_00.wav").unlink()
    sf.write(root / "owl" / "owl_00.wav", wave, SR, subtype="FLOAT")
    sf.write(root / "wren" / "wren_99.wav", np.full(SR, np.inf, np.float32), SR, subtype="FLOAT")
    recipe = recipe_from_dict(
        {
            "audio": {"sample_rate": SR, "clip_seconds": 0.25},
            "data": {"root": str(root), "max_bad_fraction": 0.1, "cache": cache},
        }
    )
    data = prepare_data(recipe)
    assert len(data.train) + len(data.val) == 20
    bad = data.bad.set_index(data.bad["file"].map(lambda f: Path(f).name))
    assert (
        bool(bad.loc["owl_00.wav", "kept"])
        and "2 of 2400 samples" in bad.loc["owl_00.wav", "error"]
    )
    assert not bad.loc["wren_99.wav", "kept"]
    assert "all 8000 samples are non-finite" in bad.loc["wren_99.wav", "error"]
    waves = [data.train[i][0] for i in range(len(data.train))]
    waves += [data.val[i][0] for i in range(len(data.val))]
    assert all(torch.isfinite(w).all() for w in waves)


def test_evaluate_scores_a_damaged_clip_and_skips_an_all_nan_one(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    labels = damaged_labels(dataset, tmp_path / "data")
    subset = tmp_path / "subset.csv"
    table = pd.read_csv(labels).head(6)
    table.assign(file=[str(tmp_path / "data" / f) for f in table["file"]]).to_csv(
        subset, index=False
    )
    out, predictions = tmp_path / "eval.json", tmp_path / "pred.csv"
    code, output = run_cli(
        "evaluate", trained / "model.pt", subset, "--out", out, "--predictions", predictions
    )
    assert code == 0, output
    metrics = json.loads(out.read_text())
    assert [Path(r["file"]).name for r in metrics["skipped_files"]] == ["allnan.wav"]
    assert [Path(r["file"]).name for r in metrics["damaged_files"]] == ["nan.wav"]
    assert "non-finite (NaN/Inf)" in metrics["damaged_files"][0]["error"]
    scored = pd.read_csv(predictions)
    assert len(scored) == 5 and np.isfinite(scored.filter(like="score_").to_numpy()).all()
    text = " ".join(output.split())
    assert "1 unreadable clip(s) skipped" in text and "1 damaged clip(s) scored" in text


# --- pretrain -----------------------------------------------------------------------------------

PRETRAIN_RECIPE = """\
seed: 5
audio: {sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}
data: {max_bad_fraction: MAX_BAD}
model: {name: cnn6, dropout: 0.0, block_dropout: 0.0}
train: {batch_size: 4, iterations: 2, eval_every: 2}
pretrain: {patch_seconds: 0.5}
"""


def test_pretrain_keeps_a_damaged_recording_and_lists_the_archive_problems(
    recordings: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    wave = sf.read(recordings / "clean.wav", dtype="float32")[0]
    wave[::100] = np.nan  # every patch of 0.5 s holds 40 of them
    sf.write(archive / "nan.wav", wave, SR, subtype="FLOAT")
    shutil.copy(recordings / "clean.wav", archive / "clean.wav")
    shutil.copy(recordings / "allnan.wav", archive / "allnan.wav")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(PRETRAIN_RECIPE.replace("MAX_BAD", "0.5"))
    code, output = run_cli("pretrain", archive, "--recipe", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "diverged" not in output
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "metrics.csv")["loss"].iloc[-1])
    assert {Path(f).name for f in pd.read_csv(tmp_path / "run" / "archive.csv")["file"]} == {
        "clean.wav",
        "nan.wav",
    }
    bad = pd.read_csv(tmp_path / "run" / "bad_files.csv")
    assert list(bad.columns) == BAD_COLUMNS
    rows = {Path(f).name: r for f, r in zip(bad["file"], bad.itertuples(), strict=True)}
    assert (
        rows["nan.wav"].kept
        and "800 of 80000 samples non-finite (NaN/Inf)" in rows["nan.wav"].error
    )
    assert not rows["allnan.wav"].kept and "non-finite (NaN/Inf)" in rows["allnan.wav"].error
    assert "1 unreadable file(s) skipped, 1 damaged file(s) kept" in " ".join(output.split())

    # Refused (1 of 3 files left out > 0.1): the list is written all the same, as train's is.
    recipe.write_text(PRETRAIN_RECIPE.replace("MAX_BAD", "0.1"))
    code, output = run_cli("pretrain", archive, "--recipe", recipe, "--out", tmp_path / "run2")
    assert code == 1 and "Traceback" not in output
    assert "1 of 3" in output and "bad_files.csv" in output
    refused = pd.read_csv(tmp_path / "run2" / "bad_files.csv")
    assert list(refused.columns) == BAD_COLUMNS and len(refused) == 2


def test_unlabelled_audio_leaves_out_an_all_nan_file_and_lists_a_damaged_one(
    recordings: Path,
) -> None:
    from bioclass.data.unlabelled import unlabelled_windows

    inputs = [str(recordings / n) for n in ("clean.wav", "nan.wav", "allnan.wav")]
    windows, bad = unlabelled_windows(inputs, 1.0)
    assert {Path(f).name for f in windows["file"]} == {"clean.wav", "nan.wav"}
    assert len(windows) == 20
    rows = {Path(f).name: r for f, r in zip(bad["file"], bad.itertuples(), strict=True)}
    assert rows["nan.wav"].kept and "5 of 80000 samples non-finite" in rows["nan.wav"].error
    assert not rows["allnan.wav"].kept
