"""How far a lower precision moves a scan's scores: the first windows of a scanned recording,
scored again in float32 and in the precision the scan ran in, compared.

A scan in bf16 or AMP reports this in its manifest (`precision_drift`), so the drift on the
user's own audio is on record beside the detections; the README's figures are from other
recordings. The windows are the scan's own (exact mode, the scan's channels), at most
DRIFT_WINDOWS of them: a fraction of a second of compute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioclass.inference.score import ScanModel, WindowOutput, score_span
from bioclass.inference.stream import WindowPlan

DRIFT_WINDOWS = 16


def precision_drift(
    path: Path,
    models: list[ScanModel],
    output: WindowOutput,
    plan: WindowPlan,
    channels: str | int,
    device: torch.device,
    precision: str,
) -> dict[str, Any]:
    """The first windows (at most DRIFT_WINDOWS, every stream) of `path` in float32 and in
    `precision`: their count, the largest and mean |score difference|, and the share of
    windows whose top class is the same.

    Raises:
        AudioError: the recording can no longer be read (the caller reports it).
    """
    span = (0, DRIFT_WINDOWS)
    scores = {
        p: score_span(
            path, models, output, plan, span, channels, DRIFT_WINDOWS, device, "exact", p
        ).scores
        for p in ("fp32", precision)
    }
    reference = scores["fp32"].reshape(-1, scores["fp32"].shape[-1])  # (streams * K, C)
    lowered = scores[precision].reshape(reference.shape)
    diff = np.abs(lowered.astype(np.float64) - reference)
    return {
        "against": "fp32",
        "file": str(path),
        "windows": int(len(reference)),
        "max_score_diff": round(float(diff.max()), 6) if len(reference) else 0.0,
        "mean_score_diff": round(float(diff.mean()), 7) if len(reference) else 0.0,
        "top_class_agreement": (
            round(float(np.mean(lowered.argmax(1) == reference.argmax(1))), 5)
            if len(reference)
            else 1.0
        ),
    }
