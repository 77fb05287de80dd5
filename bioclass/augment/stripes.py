"""SpecAugment stripes: which log-mel cells a set of time and frequency stripes covers.

Both SpecAugments use this: training's batch-level `bioclass.augment.spec.spec_augment` and
pretraining's per-patch `bioclass.augment.views.mask`. They share what a drawn stripe covers,
not how stripes are drawn: each draws from its own kind of generator, in an order that fixes
the results of existing runs (see each function).
"""

from __future__ import annotations

import torch


def stripe_cells(size: int, start: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """The cells of one axis covered by any of a set of stripes (stripes may overlap).

    Args:
        size: number of cells on the axis (frames or mel bins).
        start: (..., S) int64 first cell of each stripe.
        width: (..., S) int64 cells in each stripe; a stripe of width 0 covers nothing.
    Returns:
        (..., size) bool, on the CPU.
    """
    pos = torch.arange(size)  # (size,)
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])  # (..., S, size)
    return inside.any(dim=-2)  # (..., S, size) -> (..., size)


def striped_cells(in_time: torch.Tensor, in_freq: torch.Tensor) -> torch.Tensor:
    """The cells of a log-mel that lie in a time stripe or in a frequency stripe.

    Args:
        in_time: (..., frames) bool, from `stripe_cells`.
        in_freq: (..., mels) bool.
    Returns:
        (..., frames, mels) bool.
    """
    return in_time[..., :, None] | in_freq[..., None, :]
