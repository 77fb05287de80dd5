"""Learning-rate schedule: optional linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math


def lr_factor(iteration: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimiser step `iteration` (0-based)."""
    if warmup and iteration < warmup:
        return (iteration + 1) / warmup
    if schedule == "cosine":
        span = max(1, total - warmup)
        progress = min(1.0, (iteration - warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0
