"""Batch augmentations of the Pellegrini (2021) recipe: SpecAugment and MixUp on log-mels.

Random draws come from a numpy Generator the caller seeds per iteration, so a resumed run
repeats exactly the augmentations of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch

from bioclass.recipe.schema import AugmentSection


def spec_augment(spec: torch.Tensor, cfg: AugmentSection, rng: np.random.Generator) -> torch.Tensor:
    """Mask 0..`time_stripes` time and 0..`freq_stripes` frequency stripes, same for the batch.

    The paper applies SpecAugment at mini-batch level: one draw of stripes masks every clip.
    Masked cells are set to zero, the mean of the normalised (bn0) log-mel.

    Args:
        spec: (B, 1, frames, mels) normalised log-mel.
        cfg: stripe counts and maximum widths (frames, mel bins).
        rng: the iteration's generator.
    Returns:
        (B, 1, frames, mels) with the stripes zeroed (a new tensor).
    """
    n_frames, n_mels = spec.shape[-2:]
    keep_time = torch.ones(n_frames, dtype=spec.dtype)
    keep_freq = torch.ones(n_mels, dtype=spec.dtype)
    for keep, n_max, w_max in (
        (keep_time, cfg.time_stripes, cfg.time_width),
        (keep_freq, cfg.freq_stripes, cfg.freq_width),
    ):
        size = keep.shape[0]
        for _ in range(int(rng.integers(0, n_max + 1))):
            width = int(rng.integers(0, min(w_max, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            keep[start : start + width] = 0
    mask = (keep_time[:, None] * keep_freq[None, :]).to(spec.device)
    return spec * mask


def mixup(
    spec: torch.Tensor, target: torch.Tensor, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combination of each clip (and its target) with a random partner of the batch.

    lambda ~ Beta(alpha, alpha), one draw per mini-batch.

    Args:
        spec: (B, 1, frames, mels) inputs.
        target: (B, C) one-hot (or soft) targets.
        alpha: Beta parameter (> 0; the paper uses alpha < 1, so lambda is mostly near 0 or 1).
        rng: the iteration's generator.
    Returns:
        mixed (B, 1, frames, mels) inputs and mixed (B, C) targets.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(spec.shape[0])).to(spec.device)
    return lam * spec + (1 - lam) * spec[perm], lam * target + (1 - lam) * target[perm]
