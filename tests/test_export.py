"""`bioclass export`: every architecture as TorchScript (always) and ONNX (with the optional
packages) gives the loaded model's logits; the metadata round-trips; bad inputs are one line."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli, trained_looking_batchnorms

from bioclass.checkpoint import atomic_save, checkpoint_info, model_checkpoint, read_checkpoint
from bioclass.core.errors import BioclassError
from bioclass.export import export_model, read_metadata
from bioclass.export import run as export_run
from bioclass.models import MODEL_NAMES, FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict

SAMPLE_RATE, HOP = 8000, 80
# Each trunk's time and mel stride: a model is tested on the smallest input it takes (at least
# 16 x 16), which keeps the full-resolution WideResNet quick. A new architecture gets 32.
STRIDES = {
    "cnn6": 16,
    "cnn10": 16,
    "cnn14": 32,
    "mobilenetv1": 32,
    "resnet22": 32,
    "wideresnet28_2": 4,
}
CLASSES = ["owl", "wren", "robin"]
CALIBRATION = {"method": "platt", "a": [1.5, 1.0, 0.5], "b": [0.1, 0.0, -0.2], "fitted_on": "t"}
THRESHOLDS = {"owl": {"threshold": 0.4}, "wren": {"threshold": None}, "robin": {"threshold": 0.7}}
ATOL = 1e-4
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")

# torch.jit.load's deprecation notice: loading TorchScript is what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def tiny(name: str) -> tuple[FrontendConfig, int]:
    """The front end and window (in samples) `name` is tested with."""
    side = max(16, STRIDES.get(name, 32))
    frontend = FrontendConfig(SAMPLE_RATE, n_fft=256, hop_length=HOP, n_mels=side, f_max=4000)
    return frontend, side * HOP  # side + 1 frames


def _checkpoint(name: str, path: Path) -> tuple[Path, np.ndarray]:
    frontend, n_samples = tiny(name)
    torch.manual_seed(0)
    model = create_model(name, len(CLASSES), frontend).eval()
    trained_looking_batchnorms(model)
    recipe = recipe_to_dict(Recipe())
    recipe["audio"]["clip_seconds"] = n_samples / SAMPLE_RATE
    ckpt = model_checkpoint(
        model,
        name,
        CLASSES,
        frontend,
        recipe,
        None,
        use_ema=False,
        score_activation="sigmoid",
        extra={"thresholds": THRESHOLDS, "calibration": CALIBRATION},
    )
    atomic_save(ckpt, path)
    with torch.no_grad():  # the checkpoint's inference weights are these (use_ema off)
        expected = model(torch.from_numpy(field_like(3, n_samples))).numpy()
    return path, expected


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """name -> (checkpoint file, its model's logits of `field_like(3)`), each made once (the
    large trunks take seconds to build)."""
    folder = tmp_path_factory.mktemp("export_models")
    cache: dict[str, tuple[Path, np.ndarray]] = {}

    def get(name: str) -> tuple[Path, np.ndarray]:
        if name not in cache:
            cache[name] = _checkpoint(name, folder / f"{name}.pt")
        return cache[name]

    return get


@pytest.fixture(scope="module")
def checkpoints(made):
    return lambda name: made(name)[0]


@pytest.fixture(scope="module")
def logits(made):
    return lambda name: made(name)[1]


def field_like(batch: int, n_samples: int) -> np.ndarray:
    """(batch, n_samples) float32: exponential chirps in noise, loud, quiet and near-silent."""
    rng = np.random.default_rng(7)
    seconds = n_samples / SAMPLE_RATE
    t = np.arange(n_samples) / SAMPLE_RATE
    rows = []
    for i in range(batch):
        f0, f1 = 300.0 * (i + 1), 3500.0
        k = np.log(f1 / f0) / seconds
        chirp = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
        envelope = np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1)
        gain = [0.6, 0.02, 1e-4][i % 3]
        rows.append(gain * envelope * chirp + 0.05 * gain * rng.standard_normal(n_samples))
    return np.stack(rows).astype(np.float32)


def max_diff_over_batches(run, expected: np.ndarray, n_samples: int) -> float:
    waves = field_like(3, n_samples)
    return max(float(np.abs(run(waves[:n]) - expected[:n]).max()) for n in (1, 3))


def _onnx_session(path: Path):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _need_onnx() -> None:
    for name in ONNX_PACKAGES:
        pytest.importorskip(name)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torchscript_gives_the_models_logits(name, checkpoints, logits, tmp_path):
    out = tmp_path / f"{name}.torchscript.pt"
    summary = export_model(checkpoints(name), "torchscript", out)
    assert summary.max_abs_diff <= ATOL and summary.size_bytes == out.stat().st_size
    module = torch.jit.load(str(out))

    def run(waves: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(waves)).numpy()

    assert max_diff_over_batches(run, logits(name), tiny(name)[1]) <= ATOL


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_gives_the_models_logits(name, checkpoints, logits, tmp_path):
    _need_onnx()
    out = tmp_path / f"{name}.onnx"
    summary = export_model(checkpoints(name), "onnx", out)
    assert summary.max_abs_diff <= ATOL
    assert [p.name for p in out.parent.iterdir()] == [out.name], "weights must be inside"
    session = _onnx_session(out)
    (given,) = session.get_inputs()
    assert given.name == "waveform" and given.shape[1] == tiny(name)[1]
    assert not isinstance(given.shape[0], int), "the batch axis must be free"

    def run(waves: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"waveform": waves})[0]

    assert max_diff_over_batches(run, logits(name), tiny(name)[1]) <= ATOL


def _expected_metadata(checkpoint: Path) -> dict:
    info = checkpoint_info(read_checkpoint(checkpoint), checkpoint)
    return {
        "classes": CLASSES,
        "sample_rate": SAMPLE_RATE,
        "window_seconds": 0.16,
        "window_samples": 1280,
        "activation": "sigmoid",
        "thresholds": {"owl": 0.4, "wren": None, "robin": 0.7},
        "calibration": info.calibration.to_dict(),
        "model_name": "cnn6",
        "frontend": tiny("cnn6")[0].to_dict(),
        "channel": None,
    }


def test_torchscript_metadata_round_trips(checkpoints, tmp_path):
    out = tmp_path / "m.pt"
    summary = export_model(checkpoints("cnn6"), "torchscript", out)
    extra = {"bioclass.json": ""}
    torch.jit.load(str(out), _extra_files=extra)  # as libtorch users read it
    stored = json.loads(extra["bioclass.json"])
    assert stored == read_metadata(out) == summary.metadata
    for key, value in _expected_metadata(checkpoints("cnn6")).items():
        assert stored[key] == value, key


def test_onnx_metadata_round_trips(checkpoints, tmp_path):
    _need_onnx()
    out = tmp_path / "m.onnx"
    summary = export_model(checkpoints("cnn6"), "onnx", out)
    # As onnxruntime users read it: every value a JSON string.
    props = _onnx_session(out).get_modelmeta().custom_metadata_map
    stored = {key: json.loads(value) for key, value in props.items()}
    assert stored == read_metadata(out) == summary.metadata
    for key, value in _expected_metadata(checkpoints("cnn6")).items():
        assert stored[key] == value, key


def test_torchscript_refuses_another_window_length(checkpoints, tmp_path):
    out = tmp_path / "m.pt"
    export_model(checkpoints("cnn6"), "torchscript", out)
    module = torch.jit.load(str(out))
    with pytest.raises(Exception, match=r"shape \(batch, 1280\)"):
        module(torch.zeros(1, 1279))
    with pytest.raises(Exception, match="float32"):
        module(torch.zeros(1, 1280, dtype=torch.float64))


# Loads the exported files in a Python where bioclass cannot be imported at all.
WITHOUT_BIOCLASS = """
import json, sys
sys.modules["bioclass"] = None
import numpy as np, torch
waves = np.load(sys.argv[1])
out = {"torchscript": torch.jit.load(sys.argv[2])(torch.from_numpy(waves)).tolist()}
if len(sys.argv) > 3:
    import onnxruntime
    session = onnxruntime.InferenceSession(sys.argv[3], providers=["CPUExecutionProvider"])
    out["onnx"] = session.run(["logits"], {"waveform": waves})[0].tolist()
print(json.dumps(out))
"""


def test_exported_files_run_without_bioclass(checkpoints, logits, tmp_path):
    files = [export_model(checkpoints("cnn6"), "torchscript", tmp_path / "m.pt").path]
    if all(importlib.util.find_spec(name) for name in ONNX_PACKAGES):
        files.append(export_model(checkpoints("cnn6"), "onnx", tmp_path / "m.onnx").path)
    np.save(tmp_path / "waves.npy", field_like(3, tiny("cnn6")[1]))
    script = tmp_path / "run.py"
    script.write_text(WITHOUT_BIOCLASS, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(script),
            str(tmp_path / "waves.npy"),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
        check=True,
    )
    outputs = json.loads(done.stdout)
    assert len(outputs) == len(files)
    for name, got in outputs.items():
        assert np.abs(np.array(got) - logits("cnn6")).max() <= ATOL, name


def test_cli_exports_and_says_what_it_wrote(checkpoints, tmp_path):
    out = tmp_path / "sub" / "m.pt"
    code, output = run_cli("export", checkpoints("cnn6"), "--format", "TorchScript", "--out", out)
    assert code == 0, output
    assert out.is_file() and "(batch, 1280) float32 at 8000 Hz -> (batch, 3) logits" in output
    assert "sigmoid scores" in output and "max |difference|" in output
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.pt"], "no temporary file left"


def _one_error_line(code: int, output: str) -> str:
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    return lines[0]


def test_cli_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a model", encoding="utf-8")
    out = tmp_path / "m.pt"
    line = _one_error_line(*run_cli("export", bogus, "--format", "torchscript", "--out", out))
    assert "not a readable bioclass checkpoint" in line
    assert not out.exists()


def test_cli_refuses_an_unknown_format(checkpoints, tmp_path):
    out = tmp_path / "m.tflite"
    line = _one_error_line(
        *run_cli("export", checkpoints("cnn6"), "--format", "tflite", "--out", out)
    )
    assert "unknown export format 'tflite'" in line and "onnx or torchscript" in line
    assert not out.exists()


def test_cli_refuses_an_out_under_a_file(checkpoints, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("x", encoding="utf-8")
    line = _one_error_line(
        *run_cli("export", checkpoints("cnn6"), "--format", "torchscript", "--out", blocker / "m")
    )
    assert f"{blocker} is a file, not a folder" in line


def test_cli_refuses_a_folder_as_out(checkpoints, tmp_path):
    line = _one_error_line(
        *run_cli("export", checkpoints("cnn6"), "--format", "torchscript", "--out", tmp_path)
    )
    assert "is a folder" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_refuses_a_read_only_folder(checkpoints, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        line = _one_error_line(
            *run_cli(
                "export", checkpoints("cnn6"), "--format", "torchscript", "--out", folder / "m"
            )
        )
    finally:
        folder.chmod(0o700)
    assert "Permission denied" in line


def test_a_full_disk_leaves_no_file(checkpoints, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    checkpoint = checkpoints("cnn6")  # made (atomically) before the disk fills
    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "m.pt"
    line = _one_error_line(*run_cli("export", checkpoint, "--format", "torchscript", "--out", out))
    assert "no space left on device" in line
    assert list(tmp_path.iterdir()) == [], "neither the file nor a temporary one"


def test_an_export_that_differs_from_the_model_is_not_written(checkpoints, tmp_path, monkeypatch):
    class Off(export_run.WaveformClassifier):
        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            return super().forward(waveform) + 1.0

    monkeypatch.setattr(export_run, "WaveformClassifier", Off)
    out = tmp_path / "m.pt"
    line = _one_error_line(
        *run_cli("export", checkpoints("cnn6"), "--format", "torchscript", "--out", out)
    )
    assert "differs from the PyTorch model by 1 " in line and "nothing written" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("missing", ONNX_PACKAGES)
def test_onnx_without_its_packages_says_what_to_install(
    checkpoints, tmp_path, monkeypatch, missing
):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    out = tmp_path / "m.onnx"
    line = _one_error_line(
        *run_cli("export", checkpoints("cnn6"), "--format", "onnx", "--out", out)
    )
    needed = line.split(" needs ")[1].split(":")[0].split(", ")
    assert missing in needed and "pip install onnx onnxscript onnxruntime" in line
    assert not out.exists()


def test_read_metadata_refuses_other_files(tmp_path):
    other = tmp_path / "x.bin"
    other.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(BioclassError, match="x.bin"):
        read_metadata(other)
