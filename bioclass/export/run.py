"""`bioclass export`: one checkpoint as one file that runs without bioclass, checked against the
PyTorch model before it is written."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioclass.core import tempnames
from bioclass.core.atomic import atomic_path
from bioclass.core.errors import BioclassError
from bioclass.export.int8 import Int8Check, make_int8, require_quantization
from bioclass.export.metadata import export_metadata, read_metadata, window_samples
from bioclass.export.module import WaveformClassifier
from bioclass.export.probe import probe_waves
from bioclass.inference.models import load_models, prepare_for_inference

EXPORT_FORMATS = ("onnx", "torchscript")
# An export may differ from PyTorch by float rounding only (BatchNorm folding, another runtime's
# kernels); above this, relative to the largest logit when that exceeds 1, it is not written.
TOLERANCE = 1e-4

Saver = Callable[[torch.nn.Module, torch.Tensor, dict[str, Any], Path], None]
Loader = Callable[[Path], Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote and how close it came to the PyTorch model.

    Attributes:
        path: the file written.
        format: onnx or torchscript.
        size_bytes: its size.
        max_abs_diff: the largest |exported - PyTorch| logit on the test signal, in batches of
            1 and 3 windows.
        metadata: what the file carries (see `export_metadata`).
        int8: how an int8 export compared with the float32 one, or None (float32).
    """

    path: Path
    format: str
    size_bytes: int
    max_abs_diff: float
    metadata: dict[str, Any]
    int8: Int8Check | None = None


def _format(fmt: str) -> tuple[Saver, Loader]:
    if fmt == "onnx":
        from bioclass.export.onnx_format import load_onnx, require_onnx, save_onnx

        require_onnx()
        return save_onnx, load_onnx
    from bioclass.export.torchscript import load_torchscript, save_torchscript

    return save_torchscript, load_torchscript


def export_model(
    checkpoint: Path, fmt: str, out: Path, int8_calibration: Sequence[str | Path] | None = None
) -> ExportSummary:
    """Export the classifier of `checkpoint` to `out` as `fmt` (onnx or torchscript).

    With `int8_calibration` (audio files, folders or globs; ONNX only), the float32 export is
    then quantized to int8, calibrated and checked on windows of that audio (`export.int8`).

    Raises:
        BioclassError: an unknown format, a missing optional package, an unreadable checkpoint
            or an encoder, an unwritable `out`, an export that does not reproduce the model, or
            an int8 model that does not keep its top classes on the calibration audio.
    """
    fmt = fmt.strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise BioclassError(f"unknown export format {fmt!r}; choose {' or '.join(EXPORT_FORMATS)}")
    if int8_calibration is not None:
        if fmt != "onnx":
            raise BioclassError("--int8 quantizes ONNX exports only; use --format onnx")
        require_quantization()
    save, load = _format(fmt)
    out = Path(out)
    if out.is_dir():
        raise BioclassError(f"--out {out} is a folder; give a file name")
    loaded = load_models([Path(checkpoint)])
    info, model = loaded.info, loaded.models[0]
    waves = probe_waves(info.sample_rate, window_samples(info))
    with torch.no_grad():  # the reference: the model as scan and evaluate load it
        expected = model(torch.from_numpy(waves)).numpy()
    metadata = export_metadata(info, loaded.hashes[0])
    # A killed export's unfinished files (tens of MB each) go, as a scan's do.
    tempnames.remove_stale(out.parent)
    # Entered before the slow part, so an unwritable destination is reported at once.
    with atomic_path(out) as tmp:
        prepared = WaveformClassifier(prepare_for_inference(model, torch.device("cpu"))).eval()
        save(prepared, torch.from_numpy(waves[:2]), metadata, tmp)
        run = load(tmp)
        diff = max(float(np.abs(run(waves[:n]) - expected[:n]).max()) for n in (1, 3))
        limit = TOLERANCE * max(1.0, float(np.abs(expected).max()))
        if not diff <= limit:  # also catches NaN
            raise BioclassError(
                f"the {fmt} export differs from the PyTorch model by {diff:.3g} (more than "
                f"{limit:.3g}) on a test signal; nothing written, please report it"
            )
        check = None
        if int8_calibration is not None:
            quantized = tempnames.beside(out, "int8")
            try:
                check = make_int8(tmp, quantized, int8_calibration, metadata)
                os.replace(quantized, tmp)
            finally:
                quantized.unlink(missing_ok=True)
            metadata = read_metadata(tmp)
        size = tmp.stat().st_size
    return ExportSummary(out, fmt, size, diff, metadata, check)
