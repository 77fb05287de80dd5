"""`bioclass export --int8`: static int8 quantization of an ONNX export, calibrated and checked
on the user's audio; written only when it keeps the top classes; scanned as int8."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_cli, trained_looking_batchnorms

from bioclass.checkpoint import atomic_save, model_checkpoint
from bioclass.export import export_model, int8, read_metadata
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.runtime import precision
from bioclass.synthetic.dataset import make_long_recording

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the export extra (onnx, onnxscript, onnxruntime)",
)

RATE, WINDOW = 8000, 1280  # 0.16 s windows: 16 frames of hop 80
CLASSES = ["background", "harmonic", "pulses"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frontend = FrontendConfig(RATE, n_fft=256, hop_length=80, n_mels=16, f_max=4000)
    torch.manual_seed(0)
    model = create_model("cnn6", len(CLASSES), frontend).eval()
    trained_looking_batchnorms(model)
    recipe = recipe_to_dict(Recipe())
    recipe["audio"]["clip_seconds"] = WINDOW / RATE
    ckpt = model_checkpoint(model, "cnn6", CLASSES, frontend, recipe, None, False, "softmax")
    path = tmp_path_factory.mktemp("int8") / "model.pt"
    atomic_save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 30 s recordings with calls: 48 windows from each."""
    folder = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(5)
    for k in range(3):
        make_long_recording(folder / f"r{k}.wav", rng, 30.0, RATE, 6, species=CLASSES[1:])
    return folder


def _session(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda waves: session.run(["logits"], {"waveform": waves})[0]


def _scan_onnx(model: Path, audio: Path, out: Path, *extra: object) -> tuple[int, str]:
    return run_cli(
        "scan", audio, "--model", model, "--backend", "onnxruntime", "--out", out, *extra
    )


def test_int8_export_is_quantized_checked_on_held_out_audio_and_scans_as_int8(
    checkpoint, audio, tmp_path, monkeypatch
):
    # Written whatever the agreement of this untrained model: its figures are what is checked.
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 0.0)
    out = tmp_path / "model.int8.onnx"
    summary = export_model(checkpoint, "onnx", out, [audio])
    check = summary.int8
    assert (check.files, check.calibration_windows, check.windows) == (3, 48, 96)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name], "no temporary file left"
    meta = read_metadata(out)
    assert meta["precision"] == "int8" and meta["classes"] == CLASSES
    assert meta["int8_check"]["windows"] == 96
    assert meta["int8_check"]["made_on_cpu_with"] == precision.cpu_int8_dot()

    import onnx

    graph = onnx.load(str(out)).graph
    made_by = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(made_by[n.input[1]].op_type == "DequantizeLinear" for n in convs)
    # The front end and the head stay float32: nothing quantized feeds the STFT, the mel
    # filters or the classification layers.
    for node in graph.node:
        if node.op_type in ("STFT", "MatMul", "Gemm"):
            assert all(
                made_by.get(i) is None or made_by[i].op_type != "DequantizeLinear"
                for i in node.input
            ), node.name

    # The reported figures are those of the held-out windows, recomputed here.
    windows, _, _ = int8.audio_windows([audio], RATE, WINDOW)
    held_out = windows[48:]
    fp32 = tmp_path / "fp32.onnx"
    export_model(checkpoint, "onnx", fp32)
    a, b = _session(fp32)(held_out), _session(out)(held_out)
    assert check.agreement == pytest.approx(np.mean(a.argmax(1) == b.argmax(1)))
    assert check.speedup > 0

    code, output = _scan_onnx(
        out, audio, tmp_path / "s" / "d.csv", "--scores", tmp_path / "s" / "scores.csv"
    )
    assert code == 0, output
    manifest = json.loads((tmp_path / "s" / "d.manifest.json").read_text())
    assert manifest["precision"] == "int8"
    assert "quantized to int8" in manifest["precision_reason"]
    (recorded,) = manifest["precision_drift"]["models"]  # the export's own check, on record
    assert recorded["windows"] == 96 and recorded["model"] == str(out)
    code, output = _scan_onnx(
        fp32, audio, tmp_path / "f" / "d.csv", "--scores", tmp_path / "f" / "scores.csv"
    )
    assert code == 0, output
    import pandas as pd

    q = pd.read_csv(tmp_path / "s" / "scores.csv")[CLASSES].to_numpy()
    f = pd.read_csv(tmp_path / "f" / "scores.csv")[CLASSES].to_numpy()
    assert q.shape == f.shape and 0 < np.abs(q - f).max() < 0.2


def test_int8_below_the_agreement_floor_is_not_written(checkpoint, audio, tmp_path, monkeypatch):
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 1.01)  # no model can keep more than every class
    out = tmp_path / "m.onnx"
    code, output = run_cli("export", checkpoint, "--format", "onnx", "--out", out, "--int8", audio)
    assert code == 1, output
    (line,) = output.strip().splitlines()
    assert line.startswith("error: --int8: the int8 model changes the top class of")
    assert "nothing written: export it without --int8" in line
    assert list(tmp_path.iterdir()) == [], "neither the file nor a temporary one is left"


def test_cli_reports_the_check_and_skips_unreadable_calibration_files(
    checkpoint, audio, tmp_path, monkeypatch
):
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 0.0)
    broken = tmp_path / "in" / "broken.wav"
    broken.parent.mkdir()
    broken.write_bytes(b"RIFF not really")
    out = tmp_path / "m.onnx"
    code, output = run_cli(
        "export", checkpoint, "--format", "onnx", "--out", out, "--int8", audio, "--int8", broken
    )
    assert code == 0, output
    assert "(onnx, int8," in output and "held-out windows of 3 recording(s)" in output
    assert "top class the same on" in output and "float32's speed on this CPU" in output
    flat = "".join(output.split())  # the log's lines wrap at the terminal's width
    assert "--int8:skipped" in flat and "broken.wav:cannotdecodeaudio" in flat


def test_int8_refuses_torchscript_and_too_little_audio(checkpoint, tmp_path):
    out = tmp_path / "m.pt"
    code, output = run_cli(
        "export", checkpoint, "--format", "torchscript", "--out", out, "--int8", tmp_path
    )
    assert code == 1 and "--int8 quantizes ONNX exports only" in output, output
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(RATE, np.float32), RATE)  # 1 s: 6 windows
    code, output = run_cli("export", checkpoint, "--format", "onnx", "--out", out, "--int8", short)
    assert code == 1, output
    assert "gives 6 whole windows of 0.16 s (at least 24 needed)" in output
    assert not out.exists()


def test_cpus_without_int8_dot_products_get_7_bit_weights(checkpoint, audio, tmp_path, monkeypatch):
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 0.0)
    monkeypatch.setattr(int8, "cpu_int8_dot", lambda: None)
    out = tmp_path / "m.onnx"
    export_model(checkpoint, "onnx", out, [audio])
    assert read_metadata(out)["int8_check"]["weights_7_bit"] is True


def test_int8_dot_products_are_read_from_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_vnni"})
    assert precision.cpu_int8_dot() == "avx512_vnni"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    assert precision.cpu_int8_dot() is None
    monkeypatch.setattr(precision, "cpu_flags", lambda: None)
    assert precision.cpu_int8_dot() is None


def test_an_int8_export_cannot_be_scanned_as_fp32(checkpoint, audio, tmp_path, monkeypatch):
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 0.0)
    out = tmp_path / "m.onnx"
    export_model(checkpoint, "onnx", out, [audio])
    code, output = _scan_onnx(out, audio, tmp_path / "d.csv", "--precision", "fp32")
    assert code == 1, output
    assert "is an int8 export" in output and "leave --precision at auto" in output


def test_calibration_reads_a_bounded_number_of_windows_from_many_recordings(tmp_path, monkeypatch):
    """A folder of a season's recordings: a few windows from each of enough recordings, and
    the rest never opened."""
    for k in range(20):
        sf.write(tmp_path / f"r{k:02d}.wav", np.full(2 * RATE, 0.01 * k, np.float32), RATE)
    opened = []
    info = int8.audio_info
    monkeypatch.setattr(int8, "audio_info", lambda path: opened.append(path) or info(path))
    monkeypatch.setattr(int8, "WANTED_WINDOWS", 30)
    windows, files, skipped = int8.audio_windows([tmp_path], RATE, WINDOW)
    # ceil(30 / 20) = 2 windows a file is raised to MIN_PER_FILE (4): 8 recordings give 32.
    assert windows.shape == (32, WINDOW) and files == 8 and len(opened) == 8 and skipped == []
    levels = {round(float(w[0]) / 0.01) for w in windows}  # each recording's constant level
    assert len(levels) == 8


def test_a_killed_int8_exports_unfinished_files_are_removed_by_the_next(
    checkpoint, audio, tmp_path, monkeypatch
):
    """kill -9 during quantization leaves the float32 export, the int8 file and the
    quantizer's prepared model beside the target: the next export into the folder removes
    them (and leaves those of a live writer)."""
    import subprocess
    import sys

    from bioclass.core import tempnames

    monkeypatch.setattr(int8, "MIN_AGREEMENT", 0.0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid: a writer that is certainly gone
    out = tmp_path / "m.onnx"
    fp32_tmp = tmp_path / f"{tempnames.prefix(out.name, child.pid)}k1ll3d{tempnames.SUFFIX}"
    quantized = tmp_path / f"{tempnames.prefix(out.name, child.pid)}int8{tempnames.SUFFIX}"
    prepared = tmp_path / f"{tempnames.prefix(quantized.name, child.pid)}pre{tempnames.SUFFIX}"
    live = tempnames.beside(tmp_path / "other.onnx", "int8")  # this process: alive
    for path in (fp32_tmp, quantized, prepared, live):
        path.write_bytes(b"half a model")
    export_model(checkpoint, "onnx", out, [audio])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name])
