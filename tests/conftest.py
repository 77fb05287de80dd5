"""Shared pytest fixtures: writing small audio files and folder-per-class datasets in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli, write_recipe

from bioclass.synthetic.dataset import make_clip_dataset


def sine(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine of `freq` Hz."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def make_sine() -> Callable[..., np.ndarray]:
    """The `sine(freq, seconds, sample_rate, amplitude=0.5)` helper as a fixture."""
    return sine


@pytest.fixture
def write_audio() -> Callable[..., Path]:
    """Factory: write_audio(path, data, sample_rate, **soundfile_kwargs) -> path (dirs made)."""

    def _write(path: Path, data: np.ndarray, sample_rate: int, **kwargs) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), data, sample_rate, **kwargs)
        return path

    return _write


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory: folder_dataset(classes={"a": 5, ...}, seconds=0.5, sample_rate=8000) -> root.

    Each class gets that many distinct (different-frequency) mono 16-bit WAV files in
    `root/<class>/`, so no two files are byte-identical.
    """

    def _make(
        classes: dict[str, int], seconds: float = 0.5, sample_rate: int = 8000, name: str = "data"
    ) -> Path:
        root = tmp_path / name
        for c, (label, n) in enumerate(sorted(classes.items())):
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                freq = 200.0 + 50.0 * c + 7.0 * i
                wave = sine(freq, seconds, sample_rate)
                sf.write(str(folder / f"{label}_{i:02d}.wav"), wave, sample_rate, subtype="PCM_16")
        return root

    return _make


# --- a tiny synthetic corpus and a model trained on it (shared by train and scan tests) ---


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    table = make_clip_dataset(
        root,
        np.random.default_rng(0),
        {"background": 12, "harmonic": 8, "pulses": 8},
        sample_rate=8000,
        duration_range=(0.6, 1.4),
        n_groups=4,
    )
    table.to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(scope="session")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    recipe = write_recipe(folder, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", folder / "run")
    assert code == 0, output
    return folder / "run"


@pytest.fixture(autouse=True)
def _auto_precision_is_fp32(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`--precision auto` (the default) resolves to fp32 in every test, as if the bf16 probe
    found bf16 slower: the suite's score comparisons then mean the same on every CPU, and no test
    pays for the probe. tests/test_precision.py sets its own probe results."""
    from bioclass.runtime import precision

    monkeypatch.setattr(precision, "bf16_probe_speedup", lambda threads: 0.0)
    # The probe's answers of a test stay in the test (never the user's ~/.cache/bioclass), in a
    # folder of its own: tests that list their tmp_path find only what they wrote.
    monkeypatch.setenv("BIOCLASS_CACHE_DIR", str(tmp_path_factory.mktemp("bioclass-cache")))
