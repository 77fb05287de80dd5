"""The per-class detection thresholds a scan applies to the window scores."""

from __future__ import annotations

import numpy as np

from bioclass.checkpoint import CheckpointInfo
from bioclass.evaluation.thresholds import DEFAULT_THRESHOLD, choose_thresholds
from bioclass.scan.options import ScanOptions

__all__ = ["DEFAULT_THRESHOLD", "scan_thresholds"]


def scan_thresholds(info: CheckpointInfo, options: ScanOptions) -> np.ndarray:
    """(C,) thresholds: --thresholds CSV > --threshold > fitted in the checkpoint > 0.5."""
    classes = list(info.classes)
    chosen, _ = choose_thresholds(
        classes,
        info.fitted_thresholds,
        "the model's fitted thresholds",
        options.threshold,
        options.thresholds_csv,
    )
    return np.array([chosen[c] for c in classes], dtype=np.float64)
