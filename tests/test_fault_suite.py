"""The fault suite of issue 14: bad inputs and faults bioclass handles, kept handled.

Each case checks what a user sees: the exit code, no traceback, at most one `error:` line,
every bad file listed with its reason, and every good file still in the outputs. The README
section "What bioclass promises when things go wrong" names these tests.
"""

from __future__ import annotations

import builtins
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr
import torch
from helpers import run_cli

from bioclass.audio import walk as walk_module
from bioclass.audio.discover import collect_inputs, expand_pattern
from bioclass.synthetic.dataset import make_long_recording

CLASSES = ["background", "harmonic", "pulses"]

# The unreadable files every command meets in the suite's folders, with a word of the reason
# each command gives (scan, embed, train, evaluate and pretrain word them alike).
UNREADABLE = {
    "empty.wav": "empty (0 bytes)",
    "notes.wav": "cannot decode audio",
    "noise.flac": "cannot decode audio",
    "self.wav": "symbolic link",  # a link to itself
}


def write_unreadable(folder: Path) -> None:
    """The files of `UNREADABLE` in `folder`, and two links back up the tree (`loop/up`,
    `loop/up2`): with two, a `glob('**')` walk would branch twice per level for 40 levels."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("field notes, site 4: two owls at dusk\n", encoding="utf-8")
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    (folder / "noise.flac").write_bytes(noise.tobytes())
    os.symlink("self.wav", folder / "self.wav")
    (folder / "loop").mkdir()
    os.symlink("..", folder / "loop" / "up")
    os.symlink("..", folder / "loop" / "up2")


def write_truncated_flac(path: Path, seconds: float = 6.0) -> None:
    """A FLAC whose second half is cut off (a copy interrupted mid-file)."""
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(int(8000 * seconds))).astype(np.float32)
    sf.write(path, wave, 8000)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def write_hires(path: Path, left: np.ndarray, right: np.ndarray, rate: int = 8000) -> None:
    """Two 8 kHz signals as one 192 kHz, 24-bit stereo WAV (what a bat detector records)."""
    up = [soxr.resample(x.astype(np.float32), rate, 192_000) for x in (left, right)]
    sf.write(path, np.stack(up, axis=1), 192_000, subtype="PCM_24")


def one_error_line(output: str) -> str:
    """The single `error:` line of a command that refused its input."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def no_error(output: str) -> None:
    assert "Traceback" not in output, output
    assert not any(line.startswith("error:") for line in output.splitlines()), output


def by_name(table: pd.DataFrame) -> dict[str, str]:
    """A `file, error` table as {file name: error}."""
    return {Path(f).name: e for f, e in zip(table["file"], table["error"], strict=True)}


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def run_cli_within(seconds: float, *args: object) -> tuple[int, str]:
    """`run_cli` that fails the test instead of hanging it."""
    result: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: result.append(run_cli(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"bioclass {args[0]} still running after {seconds} s"
    return result[0]


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorder's folder: good recordings (one with spaces and accents in its name, one in a
    sub-folder with a non-Latin name, one 192 kHz 24-bit stereo), a truncated FLAC, the
    unreadable files and two symlink loops."""
    folder = tmp_path_factory.mktemp("field")
    rng = np.random.default_rng(4)
    make_long_recording(folder / "dawn chorus ü.wav", rng, 6.0, 8000, 2, species=CLASSES[1:])
    (folder / "鳥 site 2").mkdir()
    make_long_recording(folder / "鳥 site 2" / "rec 1.flac", rng, 5.0, 8000, 2, species=CLASSES[1:])
    left = sf.read(folder / "dawn chorus ü.wav", dtype="float32")[0][: 3 * 8000]
    write_hires(folder / "hires 192k.wav", left, 0.3 * left[::-1])
    write_truncated_flac(folder / "truncated.flac")
    write_unreadable(folder)
    return folder


GOOD = ["dawn chorus ü.wav", "鳥 site 2/rec 1.flac", "hires 192k.wav"]


# --- scan ------------------------------------------------------------------------------------


def test_scan_lists_every_unreadable_file_and_keeps_every_good_one(
    trained: Path, field: Path, tmp_path: Path
) -> None:
    out = tmp_path / "det.csv"
    code, output = run_cli(
        "scan",
        field,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--scores",
        tmp_path / "scores.csv",
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    no_error(output)
    failed = pd.read_csv(tmp_path / "det.failed.csv")
    reasons = by_name(failed)
    assert set(reasons) == set(UNREADABLE)
    for name, word in UNREADABLE.items():
        assert word in reasons[name], reasons[name]
    assert f"{len(UNREADABLE)} file(s) could not be read" in flat(output)
    # Nothing else lost: every other file is scored, once, and has detections.
    kept = [*GOOD, "truncated.flac"]
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert sorted(scores["file"].unique()) == sorted(str((field / n).resolve()) for n in kept)
    assert set(pd.read_csv(out)["file"]) == set(scores["file"])
    manifest = json.loads((tmp_path / "det.manifest.json").read_text(encoding="utf-8"))
    assert manifest["files_total"] == len(kept) + len(UNREADABLE)
    assert manifest["files_scanned"] == len(kept) and manifest["files_failed"] == len(UNREADABLE)
    # The truncated FLAC: scanned up to the damage, and the manifest says where it stopped.
    [damaged] = manifest["files_damaged"]
    assert Path(damaged["file"]).name == "truncated.flac"
    assert "decoding failed at" in damaged["note"] and "of 6.00 s" in damaged["note"]
    truncated = scores[scores["file"].str.endswith("truncated.flac")]
    assert 0.5 < truncated["end_time"].max() < 6.0
    # The loops were seen and left alone.
    assert flat(output).count("symlink loop") == 2


def test_symlink_loops_under_a_glob_do_not_hang_the_scan(
    trained: Path, field: Path, tmp_path: Path
) -> None:
    out = tmp_path / "det.csv"
    pattern = str(field / "**" / "*.wav")
    code, output = run_cli_within(
        60, "scan", pattern, "--model", trained / "model.pt", "--out", out
    )
    assert code == 0, output
    no_error(output)
    assert "loop/up: symlink loop" in flat(output) and "loop/up2: symlink loop" in flat(output)
    manifest = json.loads((tmp_path / "det.manifest.json").read_text(encoding="utf-8"))
    wavs = [n for n in [*GOOD, *UNREADABLE] if n.endswith(".wav")]
    assert manifest["files_total"] == len(wavs)  # each file once, however many ways lead to it
    failed = pd.read_csv(tmp_path / "det.failed.csv")
    assert {Path(f).name for f in failed["file"]} == {n for n in UNREADABLE if n.endswith(".wav")}


def test_folder_links_are_followed_once_and_loops_and_unlistable_folders_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for path in (data / "site 1" / "a.wav", elsewhere / "b.wav", data / "locked" / "c.wav"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.symlink(elsewhere, data / "disk2")  # recordings linked in from another disk
    os.symlink(elsewhere, data / "disk2 again")
    os.symlink(tmp_path, data / "up")  # leads above the folder that was asked for
    os.symlink("nowhere.wav", data / "dead.wav")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    found = walk_module.walk(data)
    assert found.loops == [(data / "up", tmp_path)]
    assert found.unreadable == [(data / "locked", "Permission denied")]
    assert collect_inputs([data]) == [
        data / "dead.wav",  # kept, so that the command lists it as unreadable
        (elsewhere / "b.wav").resolve(),  # once, though two links lead to it
        (data / "site 1" / "a.wav").resolve(),
    ]


def test_glob_patterns_match_as_glob_does_without_loops(tmp_path: Path) -> None:
    # The loop-safe `**` walk must find what glob finds where glob terminates.
    for name in ["a.wav", "b.WAV", "x/c.wav", "x/y/d.flac", "x/.hid/e.wav", ".top.wav", "z/f.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for pattern in ["**/*.wav", "x/**/*", "**", "x/**/d.*", "*/**/*.wav", "**/y/*", "x/**"]:
        full = str(tmp_path / pattern)
        expected = sorted(p for p in glob.glob(full, recursive=True) if Path(p).is_file())
        assert [str(p) for p in expand_pattern(full)] == expected, pattern


def test_hires_stereo_is_resampled_and_scanned_per_channel(trained: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    for name, species in (("a.wav", ["harmonic"]), ("b.wav", ["pulses"])):
        make_long_recording(tmp_path / name, rng, 6.0, 8000, 2, species=species)
    a, b = (sf.read(tmp_path / n, dtype="float32")[0] for n in ("a.wav", "b.wav"))
    write_hires(tmp_path / "bat 192k.wav", a, b)
    assert sf.info(tmp_path / "bat 192k.wav").subtype == "PCM_24"
    scores = {}
    for name, channels in (("bat 192k.wav", "each"), ("a.wav", "mix"), ("b.wav", "mix")):
        out = tmp_path / f"{name}.csv"
        code, output = run_cli(
            "scan",
            tmp_path / name,
            "--model",
            trained / "model.pt",
            "--out",
            out,
            "--channels",
            channels,
            "--scores",
            tmp_path / f"{name}.scores.csv",
        )
        assert code == 0, output
        scores[name] = pd.read_csv(tmp_path / f"{name}.scores.csv")
    hires = scores["bat 192k.wav"]
    assert sorted(hires["channel"].unique()) == [0, 1]
    for channel, mono in ((0, "a.wav"), (1, "b.wav")):
        rows = hires[hires["channel"] == channel]
        # Same windows in seconds (not 24 times as many: the rate was read, not assumed).
        assert np.array_equal(rows["start_time"], scores[mono]["start_time"])
        assert rows["end_time"].max() == pytest.approx(6.0)
        gap = np.abs(rows[CLASSES].to_numpy() - scores[mono][CLASSES].to_numpy()).max()
        assert gap < 1e-3, f"channel {channel} differs from its 8 kHz original by {gap}"
    # The two channels really differ, so matching each to its own original means something.
    apart = np.abs(scores["a.wav"][CLASSES].to_numpy() - scores["b.wav"][CLASSES].to_numpy())
    assert apart.max() > 10e-3


def test_unicode_and_space_names_come_out_intact(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "été 2024"
    rng = np.random.default_rng(7)
    names = ["dawn chorus ü.wav", '鳥 site 2/rec 1, take "2".flac']
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        make_long_recording(folder / name, rng, 4.0, 8000, 1, species=CLASSES[1:])
    (folder / "carnet de terrain é.wav").write_text("pas de l'audio", encoding="utf-8")
    out = tmp_path / "résultats 1" / "détections.csv"
    code, output = run_cli(
        "scan",
        folder,
        "--model",
        trained / "model.pt",
        "--out",
        out,
        "--format",
        "csv",
        "--format",
        "raven",
        "--format",
        "audacity",
        "--scores",
        out.with_suffix(".parquet"),
        "--keep-background",
        "--threshold",
        "0",
    )
    assert code == 0, output
    full = {str((folder / n).resolve()) for n in names}
    assert set(pd.read_csv(out)["file"]) == full
    assert set(pd.read_parquet(out.with_suffix(".parquet"))["file"]) == full
    tables = out.parent / "détections.raven"
    assert sorted(str(p.relative_to(tables)) for p in tables.rglob("*.txt")) == [
        "dawn chorus ü.selections.txt",
        '鳥 site 2/rec 1, take "2".selections.txt',
    ]
    for table in tables.rglob("*.txt"):
        assert set(pd.read_csv(table, sep="\t")["Begin Path"]) <= full
    labels = out.parent / "détections.audacity"
    assert sorted(str(p.relative_to(labels)) for p in labels.rglob("*.txt")) == [
        "dawn chorus ü.txt",
        '鳥 site 2/rec 1, take "2".txt',
    ]
    failed = pd.read_csv(out.parent / "détections.failed.csv")
    assert list(failed["file"]) == [str((folder / "carnet de terrain é.wav").resolve())]


# --- the other commands over the same kind of folder -------------------------------------------


def test_embed_lists_every_unreadable_file_and_keeps_every_good_one(
    trained: Path, field: Path, tmp_path: Path
) -> None:
    out = tmp_path / "emb.csv"
    code, output = run_cli(
        "embed", field, "--model", trained / "model.pt", "--out", out, "--channels", "each"
    )
    assert code == 0, output
    no_error(output)
    failed = pd.read_csv(tmp_path / "emb.failed.csv")
    reasons = by_name(failed)
    assert set(reasons) == set(UNREADABLE)
    for name, word in UNREADABLE.items():
        assert word in reasons[name], reasons[name]
    table = pd.read_csv(out)
    kept = {str((field / n).resolve()) for n in [*GOOD, "truncated.flac"]}
    assert set(table["file"]) == kept
    hires = table[table["file"].str.endswith("hires 192k.wav")]
    assert sorted(hires["channel"].unique()) == [0, 1] and hires["end_time"].max() == 3.0


@pytest.fixture(scope="module")
def class_folders(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic clips as class folders, some renamed with spaces and accents, a 192 kHz
    stereo clip, a truncated FLAC and the unreadable files in `harmonic/`; `harmonic/loop/up`
    leads back to the root, where following it would label every clip `harmonic`."""
    root = tmp_path_factory.mktemp("classes") / "data"
    shutil.copytree(dataset / "clips", root)
    for i, clip in enumerate(sorted(root.rglob("*.flac"))):
        if i % 3 == 0:
            clip.rename(clip.with_name(f"clip {i} é.flac"))
    harmonic = root / "harmonic"
    wave = sf.read(sorted(harmonic.glob("*.flac"))[0], dtype="float32")[0]
    write_hires(harmonic / "hires 192k.wav", wave, wave)
    write_truncated_flac(harmonic / "truncated.flac")
    write_unreadable(harmonic)
    return root


def _clips_by_label(root: Path) -> dict[str, str]:
    return {
        str(p): p.parent.name
        for p in root.rglob("*")
        if p.is_file() and p.name not in UNREADABLE and p.name != "truncated.flac"
    }


def test_train_skips_unreadable_clips_and_keeps_every_good_one(
    class_folders: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"""\
seed: 3
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32}}
data: {{root: {class_folders}, val_fraction: 0.3, max_bad_fraction: 0.5}}
model: {{name: cnn6}}
train: {{batch_size: 8, iterations: 2, eval_every: 2}}
""",
        encoding="utf-8",
    )
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    no_error(output)
    bad = pd.read_csv(tmp_path / "run" / "bad_files.csv")
    reasons = by_name(bad)
    assert set(reasons) == {*UNREADABLE, "truncated.flac"}
    for name, word in UNREADABLE.items():
        assert word in reasons[name], reasons[name]
    assert "cannot decode audio" in reasons["truncated.flac"]
    assert "harmonic/loop/up: symlink loop" in flat(output)
    # Every readable clip is in the split once, with its own folder's label (the loop back to
    # the root was not followed, so no clip of another class came in as `harmonic`).
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    usable = split[~split["file"].map(lambda f: Path(f).name in reasons)]
    assert dict(zip(usable["file"], usable["label"], strict=True)) == _clips_by_label(class_folders)
    assert not split["file"].duplicated().any()


def test_evaluate_lists_unreadable_clips_and_scores_every_good_one(
    trained: Path, class_folders: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    code, output = run_cli("evaluate", trained / "model.pt", class_folders, "--out", out)
    assert code == 0, output
    no_error(output)
    report = json.loads(out.read_text(encoding="utf-8"))
    skipped = {Path(s["file"]).name: s["error"] for s in report["skipped_files"]}
    assert set(skipped) == {*UNREADABLE, "truncated.flac"}
    for name, word in UNREADABLE.items():
        assert word in skipped[name], skipped[name]
    assert report["n_clips"] == len(_clips_by_label(class_folders))


def test_pretrain_lists_unreadable_files_and_keeps_every_good_one(
    field: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "pretrain.yaml"
    recipe.write_text(
        """\
seed: 5
audio: {sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32}
data: {max_bad_fraction: 0.9}
model: {name: cnn6, dropout: 0.0, block_dropout: 0.0}
train: {batch_size: 4, iterations: 1, eval_every: 1}
pretrain: {patch_seconds: 0.5}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    code, output = run_cli("pretrain", field, "--recipe", recipe, "--out", run)
    assert code == 0, output
    no_error(output)
    bad = pd.read_csv(run / "bad_files.csv")
    reasons = by_name(bad)
    # The truncated FLAC's fate in pretraining is not pinned here (its header reads).
    assert set(reasons) - {"truncated.flac"} == set(UNREADABLE)
    for name, word in UNREADABLE.items():
        assert word in reasons[name], reasons[name]
    archive = pd.read_csv(run / "archive.csv")
    for name in GOOD:
        assert str((field / name).resolve()) in set(archive["file"]), name
    hires = archive[archive["file"].str.endswith("hires 192k.wav")].iloc[0]
    assert (hires["sample_rate"], hires["channels"]) == (192_000, 2)


# --- no code from files ------------------------------------------------------------------------


class _RunsCode:
    """Pickles as a call to exec: loading the file with weights_only=False writes `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


@pytest.fixture(scope="module")
def malicious(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real checkpoints with one extra value that runs code when unpickled."""
    folder = tmp_path_factory.mktemp("malicious")
    marker = folder / "MARKER"
    files = {"marker": marker}
    for name in ("model.pt", "last.pt"):
        ckpt = torch.load(trained / name, weights_only=True)
        ckpt["note"] = _RunsCode(marker)
        (folder / name.replace(".pt", "")).mkdir()
        files[name] = folder / name.replace(".pt", "") / name
        torch.save(ckpt, files[name])
    # The files are what they claim to be: an unsafe load runs their code.
    torch.load(files["model.pt"], weights_only=False)
    assert marker.read_text() == "code ran"
    marker.unlink()
    return files


@pytest.mark.parametrize(
    "command",
    ["scan", "evaluate", "embed", "train --resume", "train init_from", "pretrain --resume"],
)
def test_malicious_checkpoint_is_refused_and_never_run(
    command: str,
    malicious: dict[str, Path],
    trained: Path,
    dataset: Path,
    field: Path,
    tmp_path: Path,
) -> None:
    model, last = malicious["model.pt"], malicious["last.pt"]
    recording = field / "dawn chorus ü.wav"
    recipe = tmp_path / "recipe.yaml"
    shutil.copy(trained / "recipe.yaml", recipe)
    args = {
        "scan": ["scan", recording, "--model", model, "--out", tmp_path / "d.csv"],
        "evaluate": ["evaluate", model, dataset / "labels.csv"],
        "embed": ["embed", recording, "--model", model, "--out", tmp_path / "e.csv"],
        "train --resume": ["train", "--resume", last.parent],
        "train init_from": ["train", recipe, "--set", f"model.init_from={model}"],
        "pretrain --resume": ["pretrain", "--resume", last.parent],
    }[command]
    if command == "train init_from":
        args += ["--out", tmp_path / "run"]
    code, output = run_cli(*args)
    assert code == 1, output
    line = one_error_line(output)
    loaded = last if "resume" in command else model
    assert str(loaded) in line and "Python object (exec)" in line, line
    assert not malicious["marker"].exists(), "the checkpoint's code ran"
    assert not (tmp_path / "d.csv").exists() and not (tmp_path / "e.csv").exists()


@pytest.mark.parametrize("where", ["train recipe", "pretrain recipe", "--set"])
def test_recipe_with_a_python_tag_is_refused_and_never_run(where: str, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"seed: {tag if where != '--set' else 3}\nmodel: {{name: cnn6}}\n", encoding="utf-8"
    )
    out = tmp_path / "run"
    args = {
        "train recipe": ["train", recipe, "--out", out],
        "pretrain recipe": ["pretrain", tmp_path, "--recipe", recipe, "--out", out],
        "--set": ["train", recipe, "--set", f"seed={tag}", "--out", out],
    }[where]
    code, output = run_cli(*args)
    assert code == 1, output
    line = one_error_line(output)
    assert "python/object/apply:os.system" in line, line
    assert not marker.exists(), "the recipe's command ran"
    assert not out.exists()


# --- kill -9 ------------------------------------------------------------------------------------


def test_killed_scan_resumes_to_byte_identical_outputs(trained: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    rng = np.random.default_rng(8)
    for i in range(5):
        make_long_recording(inputs / f"rec {i} é.wav", rng, 8.0, 8000, 2, species=CLASSES[1:])
    (inputs / "notes.wav").write_text("not audio", encoding="utf-8")
    n_files = 6

    def command(folder: Path) -> list[str]:
        # Exact mode, one window per batch and a fine hop: slow enough for the kill to land
        # mid-scan, small enough to stay quick.
        return [
            sys.executable,
            "-m",
            "bioclass",
            "scan",
            str(inputs),
            "--model",
            str(trained / "model.pt"),
            "--out",
            str(folder / "det.csv"),
            "--mode",
            "exact",
            # Fixed: `auto` re-probes bf16 in each process on a busy machine, and the reference
            # scan may then run in another precision than the killed one (the journal keeps the
            # killed scan's parts consistent with its resumption, not with a separate scan).
            "--precision",
            "fp32",
            "--batch-size",
            "1",
            "--hop",
            "0.25",
            "--format",
            "csv",
            "--format",
            "raven",
            "--raven-combined",
            "--format",
            "audacity",
            "--format",
            "kaleidoscope",
            "--scores",
            str(folder / "scores.csv"),
        ]

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(command(reference), check=True, capture_output=True)
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = killed / "det.parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(parts.glob("*.npz")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_scored = len(list(parts.glob("*.npz")))  # the unreadable file's part is not counted
    assert 1 <= n_scored < n_files - 1, "the kill should land mid-scan"
    assert not (killed / "det.csv").exists()
    done = subprocess.run(command(killed), check=True, capture_output=True, text=True)
    assert f"{n_scored} from an earlier run" in flat(done.stderr)

    def outputs(folder: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "det.parts" not in p.parts and p.name != "det.manifest.json"
        }

    expected = outputs(reference)
    # csv, failed, scores, kaleidoscope, combined Raven table and its list, and per recording
    # a Raven table, an Audacity label track and a score track
    assert len(expected) == 1 + 1 + 1 + 1 + 2 + 3 * 5
    assert outputs(killed) == expected
    first, resumed = (
        json.loads((f / "det.manifest.json").read_text(encoding="utf-8"))
        for f in (reference, killed)
    )
    assert resumed["files_resumed"] == n_scored
    assert resumed["files_scanned"] + n_scored == first["files_scanned"] == n_files - 1
    volatile = {"created", "wall_seconds", "out", "outputs", "scores_path"}
    volatile |= {"files_scanned", "files_resumed"}
    # Where bf16 is native, --precision auto's reason quotes the probe's measured speed ratio.
    volatile |= {"precision_reason"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in resumed.items() if k not in volatile
    }


def test_brackets_in_an_error_are_printed_as_written(tmp_path: Path) -> None:
    """Rich markup must not eat a bracketed name (`site[north]/`, `bioclass[export]`) from an
    error line."""
    folder = tmp_path / "site[north]"
    folder.mkdir()
    model = tmp_path / "model.pt"
    code, output = run_cli("scan", folder, "--model", model, "--out", tmp_path / "d.csv")
    assert code == 1
    assert "site[north]" in " ".join(output.split())
