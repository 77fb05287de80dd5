"""TorchScript export: a traced model behind a scripted check of its input, one file for
`torch.jit.load` in Python or libtorch, with the metadata as the extra file `bioclass.json`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bioclass.export.metadata import TORCHSCRIPT_EXTRA


class _FixedWindow(nn.Module):
    """Refuses what the trace was not made for: the window length is fixed at export (a trace
    would run on other lengths and give logits the model was never trained to give)."""

    def __init__(self, inner: nn.Module, n_samples: int, sample_rate: int) -> None:
        super().__init__()
        self.inner = inner
        self.n_samples = n_samples
        seconds = f"{n_samples / sample_rate:g} s at {sample_rate} Hz"
        self.wrong_shape = f"expected waveforms of shape (batch, {n_samples}) ({seconds}), got "
        self.wrong_dtype = "expected float32 waveforms (TorchScript dtype code 6), got code "

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2 or waveform.size(1) != self.n_samples:
            raise ValueError(self.wrong_shape + str(waveform.shape))
        if waveform.dtype != torch.float32:
            # TorchScript prints a dtype as its code, not its name.
            raise ValueError(self.wrong_dtype + str(waveform.dtype))
        return self.inner(waveform)


def save_torchscript(
    model: nn.Module, example: torch.Tensor, metadata: dict[str, Any], path: Path
) -> None:
    """Write the TorchScript file of `model` (traced on `example`, a (batch, n) waveform)."""
    with warnings.catch_warnings():
        # torch.jit's deprecation notice, and the tracer's notes that the front end's and
        # trunk's length checks become constants: they are, since the window is fixed.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (example,), check_trace=False)
        scripted = torch.jit.script(
            _FixedWindow(traced, int(example.shape[1]), int(metadata["sample_rate"]))
        )
        # By name: through a Python file object torch.jit.save is many times slower.
        torch.jit.save(scripted, str(path), _extra_files={TORCHSCRIPT_EXTRA: json.dumps(metadata)})


def load_torchscript(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """(batch, n) waveforms -> logits, by the TorchScript file at `path`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu")

    def run(waves: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(waves)).numpy()

    return run
