"""The per-class detection thresholds a scan applies to the window scores."""

from __future__ import annotations

import numpy as np

from bioclass.checkpoint import CheckpointInfo
from bioclass.evaluation.thresholds import read_thresholds_csv, resolve_thresholds
from bioclass.scan.options import ScanOptions

DEFAULT_THRESHOLD = 0.5  # for classes without a fitted threshold


def scan_thresholds(info: CheckpointInfo, options: ScanOptions) -> np.ndarray:
    """(C,) thresholds: --thresholds CSV > --threshold > fitted in the checkpoint > 0.5."""
    classes = list(info.classes)
    override = (
        read_thresholds_csv(options.thresholds_csv, classes) if options.thresholds_csv else None
    )
    # One --threshold for every class replaces the fitted ones (the CSV still overrides it).
    fitted = info.fitted_thresholds if options.threshold is None else None
    default = DEFAULT_THRESHOLD if options.threshold is None else options.threshold
    return resolve_thresholds(classes, default, dict(fitted) if fitted else None, override)
