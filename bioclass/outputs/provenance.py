"""What every run manifest opens with: the software that made the output, when, and from which
model files (by content hash), so that a table found later can be traced and reproduced."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bioclass import __version__


def provenance(model_paths: list[Path], model_hashes: list[str]) -> dict[str, Any]:
    """bioclass, torch and Python versions, the UTC creation time, and each model's absolute
    path and SHA-256 (keys: bioclass_version, torch_version, python, created, models)."""
    return {
        "bioclass_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [
            {"path": str(Path(p).resolve()), "sha256": h}
            for p, h in zip(model_paths, model_hashes, strict=True)
        ],
    }
