"""Models exported by `bioclass export`, read back for inference: the metadata contract an
export carries, and an ONNX file run in onnxruntime as a scan's model.

An exported file is the whole classifier, front end included: a batch of whole windows in,
logits out. It has no separate trunk, so it scores windows the way exact mode does. What the
scanner needs to know about it (classes, rate, window, activation, calibration, thresholds)
comes from its metadata, as a `CheckpointInfo`, so the rest of a scan cannot tell it from a
checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bioclass.checkpoint import CheckpointInfo, ModelKind
from bioclass.core.activation import Activation, Calibration
from bioclass.core.errors import BioclassError
from bioclass.models.frontend import FrontendConfig

# Raised when the meaning of an entry changes; readers refuse a newer one.
EXPORT_FORMAT = 1
INPUT_NAME = "waveform"
OUTPUT_NAME = "logits"
# The extra that installs onnxruntime (with the exporter's packages).
ONNX_EXTRA = 'pip install "bioclass[export]"'


def check_export_format(path: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` if an export of a format this bioclass reads.

    Raises:
        BioclassError: no `bioclass_export_format`, or a newer one.
    """
    version = metadata.get("bioclass_export_format")
    if not isinstance(version, int):
        raise BioclassError(f"{path}: its metadata has no bioclass_export_format; not an export")
    if version > EXPORT_FORMAT:
        raise BioclassError(
            f"{path}: exported by a newer bioclass (export format {version}); upgrade "
            "bioclass to read it"
        )
    return metadata


def info_from_metadata(path: Path, metadata: dict[str, Any]) -> CheckpointInfo:
    """What the scanner needs to know about an exported model, from its metadata.

    Raises:
        BioclassError: a key is missing or has a value no export writes.
    """
    try:
        classes = tuple(str(c) for c in metadata["classes"])
        frontend = FrontendConfig.from_dict(metadata["frontend"])
        stored = metadata.get("calibration")
        thresholds = metadata.get("thresholds")
        info = CheckpointInfo(
            kind=ModelKind.CLASSIFIER,
            model_name=str(metadata["model_name"]),
            classes=classes,
            frontend=frontend,
            sample_rate=int(metadata["sample_rate"]),
            window_seconds=float(metadata["window_seconds"]),
            channel=metadata.get("channel"),
            activation=Activation.parse(metadata["activation"], str(path)),
            background_label=str(metadata.get("background_label", "background")),
            fitted_thresholds=dict(thresholds) if thresholds else None,
            use_ema=False,  # the export holds the inference weights, whichever they were
            bioclass_version=str(metadata.get("bioclass_version", "")),
            calibration=(
                Calibration.from_dict(stored, len(classes), str(path)) if stored else None
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BioclassError(
            f"{path}: damaged bioclass metadata ({type(exc).__name__}: {exc})"
        ) from None
    if not classes or info.activation is Activation.NONE:
        raise BioclassError(f"{path}: an exported model without classes gives no class scores")
    return info


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BioclassError(f"--backend onnxruntime needs onnxruntime: {ONNX_EXTRA}") from None
    return onnxruntime


class OnnxModel:
    """One exported ONNX file in an onnxruntime session on the CPU.

    Attributes:
        path: the file.
        info: what its metadata says (as a checkpoint's description).
        metadata: all of it, as `bioclass export` wrote it.
    """

    def __init__(self, path: Path, threads: int) -> None:
        ort = _onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise BioclassError(f"model not found: {path}")
        options = ort.SessionOptions()
        # The scan's threads work inside each batch (as torch's intra-op threads do); files in
        # flight (--workers) already run batches side by side.
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about graph internals
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for files it cannot parse
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise BioclassError(
                f"{path}: not an ONNX file onnxruntime can load ({type(exc).__name__}: {first})"
            ) from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "bioclass_export_format" not in props:
            raise BioclassError(
                f"{path}: an ONNX model without bioclass metadata (make it with bioclass export)"
            )
        try:
            metadata = {key: json.loads(value) for key, value in props.items()}
        except json.JSONDecodeError as exc:
            raise BioclassError(f"{path}: damaged bioclass metadata ({exc})") from None
        self.path = path
        self.metadata = check_export_format(path, metadata)
        self.info = info_from_metadata(path, self.metadata)
        names = (
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
        )
        if INPUT_NAME not in names[0] or OUTPUT_NAME not in names[1]:
            raise BioclassError(
                f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, found "
                f"{names[0]} and {names[1]}"
            )

    def window_logits(self, waves: np.ndarray) -> np.ndarray:
        """(N, window samples) float32 waveforms -> (N, classes) float32 logits."""
        waves = np.ascontiguousarray(waves, dtype=np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: waves})[0]
