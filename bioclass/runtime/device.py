"""Choosing the compute device."""

from __future__ import annotations

import torch

from bioclass.core.errors import BioclassError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; an unavailable explicit choice is an error."""
    name = name.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BioclassError("--device cuda asked for, but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise BioclassError("--device mps asked for, but MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise BioclassError(f"unknown device '{name}' (use auto, cpu, cuda or mps)")
    return torch.device(name)
