"""The scan manifest: what was run (code, models, options as resolved), and what it produced.

Other tools read its keys; new keys may be added, existing ones keep their names and meaning.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioclass import __version__
from bioclass.inference.models import LoadedModels
from bioclass.inference.stream import WindowPlan
from bioclass.outputs import writers
from bioclass.outputs.provenance import provenance
from bioclass.scan.options import ScanOptions
from bioclass.scan.summary import ScanSummary


def options_record(options: ScanOptions, plan: WindowPlan, device: torch.device) -> dict[str, Any]:
    """The user's options as the scan ran them: every field, with the hop and device resolved."""
    record = asdict(options)
    record["hop_seconds"] = plan.hop_seconds
    record["device"] = str(device)
    return record


def build_manifest(
    loaded: LoadedModels,
    thresholds: np.ndarray,
    plan: WindowPlan,
    options: ScanOptions,
    summary: ScanSummary,
    device: torch.device,
) -> dict[str, Any]:
    """The manifest of a finished scan (JSON-able; paths are written as strings)."""
    info = loaded.info
    classes = list(info.classes)
    return {
        **provenance(list(loaded.paths), list(loaded.hashes)),
        "classes": classes,
        "score_activation": info.activation.value,
        "calibrated": loaded.calibrated(options.calibration),
        "background_label": info.background_label,
        "thresholds": dict(zip(classes, map(float, thresholds), strict=True)),
        "window_seconds": info.window_seconds,
        "sample_rate": plan.sample_rate,
        **options_record(options, plan, device),
        "files_total": summary.n_files,
        "files_scanned": summary.n_scanned,
        "files_resumed": summary.n_resumed,
        "files_failed": summary.n_failed,
        "files_damaged": summary.damaged,
        "stopped_early": summary.stopped_early,
        "audio_hours": summary.audio_seconds / 3600,
        "wall_seconds": round(summary.wall_seconds, 3),
        "detections": summary.n_detections,
        "outputs": dict(summary.outputs),
    }


def write_manifest(path: Path, manifest: dict[str, Any], summary: ScanSummary) -> None:
    """Write the manifest and list it among the outputs."""
    writers.write_manifest(path, manifest)
    summary.outputs["manifest"] = str(path)


def csv_metadata(loaded: LoadedModels, plan: WindowPlan) -> dict[str, Any]:
    """Constant run-metadata columns for the detections CSV (--metadata)."""
    return {
        "model": ";".join(p.name for p in loaded.paths),
        "model_sha256": ";".join(h[:12] for h in loaded.hashes),
        "hop_seconds": plan.hop_seconds,
        "bioclass_version": __version__,
    }
