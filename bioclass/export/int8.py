"""int8 ONNX exports: static quantization of the exported model's convolutions
(onnxruntime.quantization, QDQ format), calibrated and then checked on the user's own audio.

Only the convolutions are quantized (weights int8 per output channel, activations uint8, the
layout x86's VNNI instructions multiply fastest; 7-bit weights on a CPU without int8 dot
products, where 8-bit products can saturate); the front end (STFT, mel filters, log) stays
float32: quantizing it (as dynamic quantization of every MatMul does) turned a trained model's
top class on 77 % of real windows. Activation ranges are the 99.999th percentile of what the
calibration windows produce, which kept more top classes than min/max on real recordings.

The file is written only when the int8 model keeps the float32 export's top class on at least
MIN_AGREEMENT of held-out windows of the same audio; how much faster it runs is measured on this
machine and reported, not assumed (on a CPU without VNNI, or for depthwise convolutions such as
MobileNetV1's, int8 can be slower than float32).
"""

from __future__ import annotations

import contextlib
import io
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioclass.audio import AudioError, audio_info, fit_length, read_audio
from bioclass.audio.discover import collect_inputs
from bioclass.core import tempnames
from bioclass.core.activation import Activation, activate
from bioclass.core.errors import BioclassError
from bioclass.export.metadata import INPUT_NAME, onnx_props
from bioclass.export.onnx_format import load_onnx
from bioclass.runtime.precision import cpu_int8_dot

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.99
# The classification layers (Gemm) stay float32 too: they are a sliver of the work, and in
# float32 they halved the mean score difference on real recordings at the same speed.
QUANTIZED_OPS = ["Conv"]
WINDOWS_PER_FILE = 48  # spread over each file: many recordings teach more than one long one
MIN_PER_FILE = 4  # with thousands of recordings, a few windows from each of a few hundred
# 96 kept 98 % of a trained CNN10's top classes (head quantized too), 256 kept 99.4 %.
CALIBRATION_WINDOWS = 256
CHECK_WINDOWS = 512
WANTED_WINDOWS = 3 * CALIBRATION_WINDOWS  # a third sets the ranges, the rest (512) checks them
MIN_WINDOWS = 24
READ_SECONDS = 600.0  # of a long recording, only the first 10 minutes are read
PERCENTILE = 99.999


@dataclass(frozen=True)
class Int8Check:
    """How the int8 model compared with the float32 export on held-out windows of the audio.

    Attributes:
        files: recordings windows were taken from.
        calibration_windows: windows the activation ranges were set on.
        windows: held-out windows compared.
        agreement: share of them whose top class is the same.
        max_score_diff, mean_score_diff: |int8 - fp32| scores (after the activation).
        speedup: int8 windows per second over fp32's, on this machine (median of 3).
        skipped: 'file: reason' for each recording that could not be read.
    """

    files: int
    calibration_windows: int
    windows: int
    agreement: float
    max_score_diff: float
    mean_score_diff: float
    speedup: float
    skipped: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        """What the int8 file says about its check (metadata key `int8_check`)."""
        return {
            "files": self.files,
            "calibration_windows": self.calibration_windows,
            "windows": self.windows,
            "top_class_agreement": round(self.agreement, 5),
            "max_score_diff": round(self.max_score_diff, 5),
            "mean_score_diff": round(self.mean_score_diff, 6),
        }


def require_quantization() -> None:
    """One line naming what to install when onnxruntime's quantization tools are missing."""
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise BioclassError(
            "--int8 needs onnxruntime (with its quantization tools): pip install onnxruntime"
        ) from None


def audio_windows(
    inputs: Sequence[str | Path], sample_rate: int, window: int
) -> tuple[np.ndarray, int, list[str]]:
    """Whole windows of the calibration audio, mono at the model's rate, shuffled (seed 0).

    Bounded whatever the inputs hold: recordings are taken in a seeded random order until
    WANTED_WINDOWS are in hand, each giving windows spread over its first READ_SECONDS (as many
    as WANTED_WINDOWS spread over all the recordings asks, between MIN_PER_FILE and
    WINDOWS_PER_FILE), each window read on its own from the file; unreadable files are skipped
    and named.

    Returns:
        (n, window) float32 windows, the number of files they came from, and the skipped files.

    Raises:
        BioclassError: the inputs match nothing, or yield fewer than MIN_WINDOWS windows.
    """
    files = collect_inputs(list(inputs))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))
    per_file = int(np.clip(-(-WANTED_WINDOWS // len(files)), MIN_PER_FILE, WINDOWS_PER_FILE))
    seconds = window / sample_rate
    windows: list[np.ndarray] = []
    used, skipped = 0, []
    for index in order:
        if len(windows) >= WANTED_WINDOWS:
            break
        path = files[index]
        try:
            length = min(audio_info(path).duration_seconds, READ_SECONDS)
            count = int(length // seconds)
            starts = np.unique(np.linspace(0, count - 1, min(count, per_file)).astype(int))
            cut = [
                read_audio(path, sample_rate, None, s * seconds, (s + 1) * seconds) for s in starts
            ]
        except AudioError as exc:
            skipped.append(str(exc))
            log.warning("--int8: skipped %s", exc)
            continue
        whole = [fit_length(w, window) for w in cut if len(w) >= window - 1]
        windows += whole
        used += bool(whole)
    if len(windows) < MIN_WINDOWS:
        raise BioclassError(
            f"--int8: the calibration audio gives {len(windows)} whole windows of {seconds:g} s "
            f"(at least {MIN_WINDOWS} needed); give more of the recordings the model will scan"
        )
    shuffled = rng.permutation(len(windows))
    return np.stack([windows[i] for i in shuffled]).astype(np.float32), used, skipped


def quantize(fp32_path: Path, out: Path, calibration: np.ndarray, reduce_range: bool) -> None:
    """Write the int8 (QDQ) model of the float32 ONNX file `fp32_path` to `out`; with
    `reduce_range`, weights use 7 bits (for CPUs without int8 dot products, where full-range
    uint8 x int8 products can saturate)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        # Small batches: the calibration run keeps every layer's activations of a batch.
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 8)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared = tempnames.beside(out, "pre")
    try:
        # The calibrator prints its progress on stdout, which is for data: kept from there.
        with contextlib.redirect_stdout(io.StringIO()):
            # Folds constants and infers shapes, so the quantizer sees each layer whole.
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(out),
                Batches(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=QUANTIZED_OPS,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
                extra_options={"CalibPercentile": PERCENTILE},
            )
    except Exception as exc:  # onnxruntime's tools raise many types; one line says which
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise BioclassError(
            f"--int8: onnxruntime could not quantize the model ({type(exc).__name__}: {first}); "
            "export it without --int8"
        ) from None
    finally:
        prepared.unlink(missing_ok=True)


def set_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Replace the bioclass metadata of the ONNX file at `path` (in place)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in onnx_props(metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _logits(run: Callable[[np.ndarray], np.ndarray], windows: np.ndarray) -> np.ndarray:
    return np.concatenate([run(windows[i : i + 32]) for i in range(0, len(windows), 32)])


def compare(
    fp32_path: Path, int8_path: Path, windows: np.ndarray, activation: Activation
) -> tuple[float, float, float, float]:
    """Top-class agreement, max and mean |score difference|, and int8's speed over fp32's, on
    `windows` (timed in turn, 3 rounds, medians)."""
    runs = {"fp32": load_onnx(fp32_path), "int8": load_onnx(int8_path)}
    logits: dict[str, np.ndarray] = {}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(3):
        for name, run in runs.items():
            started = time.perf_counter()
            logits[name] = _logits(run, windows)
            seconds[name].append(time.perf_counter() - started)
    agreement = float(np.mean(logits["int8"].argmax(1) == logits["fp32"].argmax(1)))
    scores = {name: activate(torch.from_numpy(x), activation).numpy() for name, x in logits.items()}
    diff = np.abs(scores["int8"] - scores["fp32"])
    speedup = statistics.median(seconds["fp32"]) / statistics.median(seconds["int8"])
    return agreement, float(diff.max()), float(diff.mean()), speedup


def make_int8(
    fp32_path: Path,
    out: Path,
    calibration_inputs: Sequence[str | Path],
    metadata: dict[str, Any],
) -> Int8Check:
    """Quantize the float32 export at `fp32_path` into `out`, calibrated on windows of
    `calibration_inputs` and checked on others; `metadata` (the export's) goes into `out` with
    `precision: int8` and the check's figures.

    Raises:
        BioclassError: too little readable audio, a failed quantization, or a top-class
            agreement below MIN_AGREEMENT (`out` is then left for the caller to discard).
    """
    windows, files, skipped = audio_windows(
        calibration_inputs, int(metadata["sample_rate"]), int(metadata["window_samples"])
    )
    n_calibration = min(CALIBRATION_WINDOWS, len(windows) // 3)
    calibration, held_out = windows[:n_calibration], windows[n_calibration:][:CHECK_WINDOWS]
    dot = cpu_int8_dot()
    quantize(fp32_path, out, calibration, reduce_range=dot is None)
    agreement, max_diff, mean_diff, speedup = compare(
        fp32_path, out, held_out, Activation(metadata["activation"])
    )
    check = Int8Check(
        files, n_calibration, len(held_out), agreement, max_diff, mean_diff, speedup, skipped
    )
    if agreement < MIN_AGREEMENT:
        raise BioclassError(
            f"--int8: the int8 model changes the top class of {100 * (1 - agreement):.1f} % of "
            f"{len(held_out)} windows of the calibration audio (at most "
            f"{100 * (1 - MIN_AGREEMENT):g} % allowed); nothing written: export it without --int8"
        )
    made = {**check.to_metadata(), "weights_7_bit": dot is None, "made_on_cpu_with": dot}
    set_metadata(out, {**metadata, "precision": "int8", "int8_check": made})
    return check
