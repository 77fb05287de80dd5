"""What an exported model says about itself, so a runtime without bioclass can use it: the
input it takes, what its outputs mean and how they become scores and detections.

One dict, written as JSON: into an ONNX file as `metadata_props` (one key per entry, each value
a JSON string) and into a TorchScript file as the extra file `bioclass.json` (the whole dict).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from bioclass import __version__
from bioclass.checkpoint import CheckpointInfo
from bioclass.core.errors import BioclassError
from bioclass.inference.exported import (
    EXPORT_FORMAT,
    INPUT_NAME,
    OUTPUT_NAME,
    check_export_format,
)
from bioclass.inference.stream import WindowPlan

__all__ = ["EXPORT_FORMAT", "INPUT_NAME", "OUTPUT_NAME", "export_metadata", "read_metadata"]

TORCHSCRIPT_EXTRA = "bioclass.json"


def window_samples(info: CheckpointInfo) -> int:
    """The fixed input length, rounded to whole samples as the scanner rounds its windows."""
    return WindowPlan.from_seconds(info.sample_rate, info.window_seconds, 1.0).window_samples


def export_metadata(info: CheckpointInfo, checkpoint_sha256: str) -> dict[str, Any]:
    """The metadata of a classifier exported from a checkpoint described by `info`."""
    n = window_samples(info)
    return {
        "bioclass_export_format": EXPORT_FORMAT,
        "bioclass_version": __version__,
        "checkpoint_sha256": checkpoint_sha256,
        "model_name": info.model_name,
        "classes": list(info.classes),
        "background_label": info.background_label,
        "sample_rate": info.sample_rate,
        "window_seconds": info.window_seconds,
        "window_samples": n,
        # Which channel of multichannel audio training used; null: the mean of the channels.
        "channel": info.channel,
        "input": {"name": INPUT_NAME, "shape": ["batch", n], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(info.classes)], "dtype": "float32"},
        "activation": info.activation.value,
        "calibration": None if info.calibration is None else info.calibration.to_dict(),
        "thresholds": None if info.fitted_thresholds is None else dict(info.fitted_thresholds),
        "frontend": info.frontend.to_dict(),
    }


def onnx_props(metadata: dict[str, Any]) -> dict[str, str]:
    """`metadata` as ONNX metadata_props: every value JSON-encoded (ONNX stores strings only)."""
    return {key: json.dumps(value) for key, value in metadata.items()}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The bioclass metadata of an exported model (ONNX, or TorchScript read as the zip it is).

    Raises:
        BioclassError: not an exported bioclass model, or from a newer export format.
    """
    path = Path(path)
    if not path.is_file():
        raise BioclassError(f"exported model not found: {path}")
    metadata = _torchscript_metadata(path) if zipfile.is_zipfile(path) else _onnx_metadata(path)
    return check_export_format(path, metadata)


def _torchscript_metadata(path: Path) -> dict[str, Any]:
    # torch.jit.save puts extra files under "<archive name>/extra/".
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(f"/extra/{TORCHSCRIPT_EXTRA}")]
        if not names:
            raise BioclassError(f"{path}: a zip file without {TORCHSCRIPT_EXTRA}, not an export")
        return json.loads(archive.read(names[0]))


def _onnx_metadata(path: Path) -> dict[str, Any]:
    try:
        import onnx
    except ImportError:
        raise BioclassError(
            f"{path}: reading ONNX files needs the onnx package: pip install 'bioclass[export]'"
        ) from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for files that are not ONNX
        raise BioclassError(f"{path}: not an ONNX file ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "bioclass_export_format" not in props:
        raise BioclassError(f"{path}: an ONNX model without bioclass metadata")
    return {key: json.loads(value) for key, value in props.items()}
