"""`bioclass scan --backend onnxruntime`: an exported ONNX file scans like its checkpoint (the
same detections, scores within 1e-4), resumes from its own parts, records itself in the
manifest, and bad inputs are refused with one line."""

from __future__ import annotations

import builtins
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli, trained_looking_batchnorms

from bioclass.checkpoint import atomic_save, model_checkpoint
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.scan import runner

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

SAMPLE_RATE, HOP, SIDE = 8000, 80, 16
WINDOW = SIDE * HOP  # 1280 samples, 0.16 s: cnn6's smallest input
CLASSES = ["owl", "wren", "robin"]
CALIBRATION = {"method": "platt", "a": [1.5, 1.0, 0.5], "b": [0.1, 0.0, -0.2], "fitted_on": "t"}
THRESHOLDS = {"owl": {"threshold": 0.4}, "wren": {"threshold": None}, "robin": {"threshold": 0.7}}
SCORE_TOLERANCE = 1e-4


def _checkpoint(path: Path) -> Path:
    frontend = FrontendConfig(SAMPLE_RATE, n_fft=256, hop_length=HOP, n_mels=SIDE, f_max=4000)
    torch.manual_seed(0)
    model = create_model("cnn6", len(CLASSES), frontend).eval()
    trained_looking_batchnorms(model)
    recipe = recipe_to_dict(Recipe())
    recipe["audio"]["clip_seconds"] = WINDOW / SAMPLE_RATE
    ckpt = model_checkpoint(
        model,
        "cnn6",
        CLASSES,
        frontend,
        recipe,
        None,
        use_ema=False,
        score_activation="sigmoid",
        extra={"thresholds": THRESHOLDS, "calibration": CALIBRATION},
    )
    atomic_save(ckpt, path)
    return path


def _recording(path: Path, seconds: float, seed: int, write_audio) -> Path:
    """Chirps and tone bursts in noise, so windows' top classes and scores vary."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = np.sin(2 * np.pi * (300 * t + 400 * t**2))
    bursts = np.sin(2 * np.pi * 1800 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)
    wave = 0.3 * chirp * (np.sin(2 * np.pi * 0.4 * t) > 0) + 0.4 * bursts
    wave = wave + 0.05 * rng.standard_normal(t.size)
    return write_audio(path, wave.astype(np.float32), SAMPLE_RATE)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, its ONNX export), made once."""
    from bioclass.export import export_model

    folder = tmp_path_factory.mktemp("onnx_scan")
    checkpoint = _checkpoint(folder / "model.pt")
    onnx_file = folder / "model.onnx"
    export_model(checkpoint, "onnx", onnx_file)
    return checkpoint, onnx_file


@pytest.fixture
def recordings(tmp_path: Path, write_audio) -> list[Path]:
    folder = tmp_path / "audio"
    folder.mkdir()
    return [
        _recording(folder / "a.wav", 3.0, 1, write_audio),
        _recording(folder / "b.wav", 2.1, 2, write_audio),
    ]


def _scan(model: Path, audio: list[Path], out: Path, *extra: str) -> tuple[int, str]:
    return run_cli(
        "scan", *audio, "--model", model, "--out", out, "--threshold", "0.3", "--no-merge",
        "--scores", out.with_suffix(".scores.csv"), *extra,
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _assert_same_detections(a: Path, b: Path) -> None:
    rows_a, rows_b = _rows(a), _rows(b)
    assert len(rows_a) == len(rows_b) > 10
    for ra, rb in zip(rows_a, rows_b, strict=True):
        scores = ("score", "mean_score")
        assert {k: v for k, v in ra.items() if k not in scores} == {
            k: v for k, v in rb.items() if k not in scores
        }
        for key in scores:
            # Written to 4 decimals: a difference below 1e-4 can still move the last digit.
            assert abs(float(ra[key]) - float(rb[key])) <= SCORE_TOLERANCE + 1e-9, (ra, rb)


def _score_matrix(path: Path) -> np.ndarray:
    rows = _rows(path)
    return np.array([[float(r[c]) for c in CLASSES] for r in rows])


def test_onnx_scan_gives_the_torch_scans_detections(exported, recordings, tmp_path):
    checkpoint, onnx_file = exported
    code, out = _scan(checkpoint, recordings, tmp_path / "torch.csv", "--mode", "exact")
    assert code == 0, out
    code, out = _scan(
        onnx_file, recordings, tmp_path / "onnx.csv", "--backend", "onnxruntime", "--mode", "exact"
    )
    assert code == 0, out
    _assert_same_detections(tmp_path / "torch.csv", tmp_path / "onnx.csv")
    torch_scores = _score_matrix(tmp_path / "torch.scores.csv")
    onnx_scores = _score_matrix(tmp_path / "onnx.scores.csv")
    assert torch_scores.shape == onnx_scores.shape and torch_scores.shape[0] > 40
    assert np.abs(torch_scores - onnx_scores).max() <= SCORE_TOLERANCE
    # The calibration and thresholds came from the ONNX file's metadata, as from the checkpoint.
    torch_manifest = json.loads((tmp_path / "torch.manifest.json").read_text())
    manifest = json.loads((tmp_path / "onnx.manifest.json").read_text())
    for key in ("classes", "thresholds", "calibrated", "window_seconds", "sample_rate"):
        assert manifest[key] == torch_manifest[key], key
    assert manifest["calibrated"] is True
    assert manifest["backend"] == "onnxruntime" and torch_manifest["backend"] == "torch"
    (model,) = manifest["models"]
    assert model["path"] == str(onnx_file.resolve())
    assert model["sha256"] == hashlib.sha256(onnx_file.read_bytes()).hexdigest()


def test_fast_mode_with_onnxruntime_scans_exactly(exported, recordings, tmp_path):
    checkpoint, onnx_file = exported
    assert _scan(checkpoint, recordings, tmp_path / "exact.csv", "--mode", "exact")[0] == 0
    # fast is the default mode: an export has no separate trunk, so the scan is exact.
    code, out = _scan(onnx_file, recordings, tmp_path / "o.csv", "--backend", "onnxruntime")
    assert code == 0, out
    assert json.loads((tmp_path / "o.manifest.json").read_text())["mode"] == "exact"
    _assert_same_detections(tmp_path / "exact.csv", tmp_path / "o.csv")


def test_onnx_scan_resumes_from_its_parts(exported, recordings, tmp_path, monkeypatch):
    _, onnx_file = exported
    out = tmp_path / "det.csv"
    args = ("--backend", "onnxruntime")
    assert _scan(onnx_file, recordings, out, *args)[0] == 0
    first = out.read_bytes()
    scored: list[Path] = []
    real = runner.score_file

    def counting(path, *a, **k):
        scored.append(Path(path))
        return real(path, *a, **k)

    monkeypatch.setattr(runner, "score_file", counting)
    assert _scan(onnx_file, recordings, out, *args)[0] == 0
    assert scored == [] and out.read_bytes() == first
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["files_resumed"] == 2 and manifest["files_scanned"] == 0
    # One part gone (a scan stopped after the first file): only that file is scored again.
    parts = sorted((tmp_path / "det.parts").iterdir())
    assert len(parts) == 2
    newest = max(parts, key=lambda p: p.stat().st_mtime_ns)
    newest.unlink()
    assert _scan(onnx_file, recordings, out, *args)[0] == 0
    assert scored == [recordings[1]] and out.read_bytes() == first


def test_torch_parts_are_not_reused_by_onnxruntime(exported, recordings, tmp_path, monkeypatch):
    checkpoint, onnx_file = exported
    out = tmp_path / "det.csv"
    assert _scan(checkpoint, recordings, out, "--mode", "exact")[0] == 0
    assert _scan(onnx_file, recordings, out, "--backend", "onnxruntime")[0] == 0
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["files_scanned"] == 2 and manifest["files_resumed"] == 0


def _one_line_error(code: int, out: str) -> str:
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error:"), out
    assert "Traceback" not in out
    return lines[0]


def test_a_file_that_is_not_onnx_is_refused(exported, recordings, tmp_path):
    checkpoint, _ = exported
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("field notes, not a model\n")
    for model in (not_onnx, checkpoint):
        out = tmp_path / "det.csv"
        line = _one_line_error(*_scan(model, recordings, out, "--backend", "onnxruntime"))
        assert str(model) in line and "not an ONNX file" in line
        assert not out.exists()


def test_an_onnx_file_with_the_torch_backend_says_which_backend(exported, recordings, tmp_path):
    _, onnx_file = exported
    line = _one_line_error(*_scan(onnx_file, recordings, tmp_path / "d.csv"))
    assert str(onnx_file) in line and "--backend onnxruntime" in line


def test_an_onnx_model_without_bioclass_metadata_is_refused(exported, recordings, tmp_path):
    import onnx

    _, onnx_file = exported
    model = onnx.load(str(onnx_file))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    line = _one_line_error(*_scan(bare, recordings, tmp_path / "d.csv", "--backend", "onnxruntime"))
    assert "without bioclass metadata" in line and str(bare) in line


def test_missing_onnxruntime_names_the_extra(exported, recordings, tmp_path, monkeypatch):
    _, onnx_file = exported
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    line = _one_line_error(
        *_scan(onnx_file, recordings, tmp_path / "d.csv", "--backend", "onnxruntime")
    )
    assert "needs onnxruntime" in line and 'pip install "bioclass[export]"' in line


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (("--precision", "bf16"), "--precision bf16"),
        (("--device", "cuda"), "CPU only"),
    ],
)
def test_settings_onnxruntime_cannot_run_are_refused(exported, recordings, tmp_path, extra, says):
    _, onnx_file = exported
    out = tmp_path / "d.csv"
    line = _one_line_error(*_scan(onnx_file, recordings, out, "--backend", "onnxruntime", *extra))
    assert says in line and not out.exists()


def test_ray_with_onnxruntime_is_refused_before_ray_starts(exported, recordings, tmp_path):
    pytest.importorskip("ray")
    _, onnx_file = exported
    out = tmp_path / "d.csv"
    extra = ("--backend", "onnxruntime", "--ray", "local")
    line = _one_line_error(*_scan(onnx_file, recordings, out, *extra))
    assert "--ray scores with the torch backend" in line and not out.exists()


def test_python_api_scans_with_onnxruntime(exported, recordings, tmp_path):
    import bioclass

    _, onnx_file = exported
    result = bioclass.scan(
        recordings, onnx_file, tmp_path / "api.csv", backend="onnxruntime", threshold=0.3
    )
    assert len(result.detections) > 0
    with pytest.raises(bioclass.BioclassError, match="backend must be one of"):
        bioclass.scan(recordings, onnx_file, tmp_path / "x.csv", backend="tensorrt")
