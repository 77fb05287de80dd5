"""Where a scan's models run: PyTorch (checkpoints from `bioclass train`) or onnxruntime (ONNX
files from `bioclass export`).

A backend decides only how models are loaded and which device and precision they accept; every
model it loads is scored by `score.score_file`, which hands whole windows to a model of another
runtime (`WholeWindowModel`) and runs PyTorch classifiers itself. Decoding, windowing, resume and
outputs are the same code whichever backend runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bioclass.core.errors import BioclassError
from bioclass.inference.exported import OnnxModel
from bioclass.inference.models import (
    LoadedModels,
    ensemble,
    load_models,
    prepare_for_inference,
)
from bioclass.runtime.device import pick_device
from bioclass.runtime.precision import INT8_AND_FP32, PrecisionChoice, resolve_precision

TORCH = "torch"
ONNXRUNTIME = "onnxruntime"
BACKENDS = (TORCH, ONNXRUNTIME)


def load_backend(
    paths: list[Path], backend: str, device: str, precision: str
) -> tuple[LoadedModels, torch.device, PrecisionChoice]:
    """The models of `paths` loaded for `backend` and ready to score, the device they use and
    the precision they run in (`--precision auto` resolved).

    torch: checkpoints, on `device`, prepared (BatchNorms folded, channels-last). onnxruntime:
    exported ONNX files, each in a CPU session with as many threads as torch uses
    (`torch.get_num_threads()`: OMP_NUM_THREADS, else the cores), in float32.

    Raises:
        BioclassError: an unknown backend; for onnxruntime, onnxruntime not installed, a device
            other than the CPU, a precision other than fp32 (or auto), a file that is not an
            ONNX export of bioclass; models that disagree (as `load_models`).
    """
    if not paths:
        raise BioclassError("give at least one --model")
    paths = [Path(p) for p in paths]
    if backend == TORCH:
        onnx_files = [p for p in paths if p.suffix.lower() == ".onnx"]
        if onnx_files:
            # torch.load would only say it cannot unpickle it.
            raise BioclassError(
                f"{onnx_files[0]}: an ONNX file; scan it with --backend onnxruntime"
            )
        loaded = load_models(paths)
        dev = pick_device(device)
        choice = resolve_precision(dev, precision)
        for model in loaded.models:
            prepare_for_inference(model, dev)
        return loaded, dev, choice
    if backend == ONNXRUNTIME:
        if device not in ("auto", "cpu"):
            raise BioclassError(
                f"--backend onnxruntime runs on the CPU only; drop --device {device} or use "
                "--backend torch"
            )
        if precision not in ("auto", "fp32"):
            # The export is a float32 graph; onnxruntime has no autocast to lower it.
            raise BioclassError(
                f"--precision {precision}: --backend onnxruntime runs the exported float32 "
                "model; use --precision fp32 or --backend torch"
            )
        threads = torch.get_num_threads()
        models = [OnnxModel(p, threads) for p in paths]
        choice = exported_precision(precision, models)
        return ensemble(models, paths, [m.info for m in models]), torch.device("cpu"), choice
    raise BioclassError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")


def exported_precision(asked: str, models: list[OnnxModel]) -> PrecisionChoice:
    """What exported models compute in: their own precision (float32, or int8 from
    `bioclass export --int8`); onnxruntime has no autocast to change it.

    Raises:
        BioclassError: `--precision fp32` with an int8 export (it would not run in fp32).
    """
    quantized = [m.path for m in models if m.metadata.get("precision") == "int8"]
    if not quantized:
        return PrecisionChoice(asked, "fp32", "onnxruntime runs the exported float32 model")
    if asked == "fp32":
        raise BioclassError(
            f"--precision fp32: {quantized[0]} is an int8 export (bioclass export --int8); scan "
            "its float32 export for fp32, or leave --precision at auto"
        )
    used = "int8" if len(quantized) == len(models) else INT8_AND_FP32
    return PrecisionChoice(asked, used, "the export is quantized to int8 (bioclass export --int8)")
