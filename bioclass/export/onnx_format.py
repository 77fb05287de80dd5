"""ONNX export (torch.onnx's dynamo exporter, which needs onnxscript), checked in onnxruntime;
the metadata goes into the file's metadata_props."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bioclass.core.errors import BioclassError
from bioclass.export.metadata import INPUT_NAME, OUTPUT_NAME, onnx_props

# STFT needs opset >= 17; a fixed opset keeps files readable by the same runtimes whatever
# torch's default becomes.
OPSET = 18
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def require_onnx() -> None:
    """Raise one line naming what to install when a package the ONNX export needs is missing."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        # Brackets would be read as markup by the console: the packages are named instead of
        # the extra (bioclass[export]) that installs them.
        raise BioclassError(
            f"--format onnx needs {', '.join(missing)}: pip install {' '.join(ONNX_PACKAGES)}"
        )
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):
        # Older torch.onnx has no dynamo exporter with dynamic shapes (the STFT needs it).
        raise BioclassError(
            f"--format onnx needs torch >= 2.6 (this is {torch.__version__}); upgrade torch or "
            "use --format torchscript"
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter logs a warning per torchvision operator it cannot register and passes on
    # deprecation notices of torch internals: none says anything about this model.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def save_onnx(
    model: nn.Module, example: torch.Tensor, metadata: dict[str, Any], path: Path
) -> None:
    """Write the ONNX file of `model` (exported on `example`, a (batch, n) waveform) with a free
    batch axis and `metadata` in its metadata_props: one file, weights inside."""
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        try:
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={INPUT_NAME: {0: batch}},
                opset_version=OPSET,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; one line says which
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BioclassError(
                f"the ONNX exporter failed ({type(exc).__name__}: {first}); please report it, "
                "and use --format torchscript meanwhile"
            ) from None
        for key, value in onnx_props(metadata).items():
            program.model.metadata_props[key] = value
        # Saved from the exporter's own graph: no second in-memory copy of the weights.
        program.save(str(path), external_data=False)


def load_onnx(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """(batch, n) waveforms -> logits, by the ONNX file at `path` in onnxruntime on the CPU,
    with as many threads as PyTorch uses (as the scan's onnxruntime backend)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: its warnings are about graph internals
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda waves: session.run([OUTPUT_NAME], {INPUT_NAME: waves})[0]
