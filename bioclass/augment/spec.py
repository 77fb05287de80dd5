"""Batch augmentations of the Pellegrini (2021) recipe: SpecAugment and MixUp on log-mels.

Random draws come from a numpy Generator the caller seeds per iteration, so a resumed run
repeats exactly the augmentations of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch

from bioclass.augment.stripes import stripe_cells, striped_cells
from bioclass.recipe.schema import AugmentSection


def _draw_axis(
    rng: np.random.Generator, size: int, max_stripes: int, max_width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the stripes of one axis: starts (S,) and widths (S,) int64, S in 0..max_stripes.

    One number at a time from `rng`: the count, then each stripe's width (0..min(max_width,
    size)) and start (0..size - width). The per-patch view mask draws in batches from a torch
    generator instead; each keeps its own order, which every earlier run's results depend on.
    """
    starts, widths = [], []
    for _ in range(int(rng.integers(0, max_stripes + 1))):
        width = int(rng.integers(0, min(max_width, size) + 1))
        starts.append(int(rng.integers(0, size - width + 1)))
        widths.append(width)
    return torch.tensor(starts, dtype=torch.long), torch.tensor(widths, dtype=torch.long)


def spec_augment(spec: torch.Tensor, cfg: AugmentSection, rng: np.random.Generator) -> torch.Tensor:
    """Mask 0..`time_stripes` time and 0..`freq_stripes` frequency stripes, same for the batch.

    The paper applies SpecAugment at mini-batch level: one draw of stripes masks every clip.
    Masked cells are set to zero, the mean of the normalised (bn0) log-mel.

    Args:
        spec: (B, 1, frames, mels) normalised log-mel.
        cfg: stripe counts and maximum widths (frames, mel bins).
        rng: the iteration's generator (time stripes are drawn first, then frequency stripes).
    Returns:
        (B, 1, frames, mels) with the stripes zeroed (a new tensor).
    """
    n_frames, n_mels = spec.shape[-2:]
    in_time = stripe_cells(n_frames, *_draw_axis(rng, n_frames, cfg.time_stripes, cfg.time_width))
    in_freq = stripe_cells(n_mels, *_draw_axis(rng, n_mels, cfg.freq_stripes, cfg.freq_width))
    # Multiplied by a 0/1 mask where the view mask fills with 0: the two differ only for NaN
    # cells and in the sign of a zeroed negative cell (-0.0), and keeping each as it was keeps
    # every run's results bit for bit.
    keep = (~striped_cells(in_time, in_freq)).to(spec.dtype)  # (frames, mels)
    return spec * keep.to(spec.device)


def mixup(
    spec: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
    union: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combination of each clip (and its target) with a random partner of the batch.

    lambda ~ Beta(alpha, alpha), one draw per mini-batch.

    Args:
        spec: (B, 1, frames, mels) inputs.
        target: (B, C) one-hot (or soft, or multi-hot) targets.
        alpha: Beta parameter (> 0; the paper uses alpha < 1, so lambda is mostly near 0 or 1).
        rng: the iteration's generator.
        union: targets are the union of the two (each class at its larger value: both sounds
            are in the mix, however faint one is) instead of their convex combination.
    Returns:
        mixed (B, 1, frames, mels) inputs and mixed (B, C) targets.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(spec.shape[0])).to(spec.device)
    mixed = lam * spec + (1 - lam) * spec[perm]
    if union:
        return mixed, torch.maximum(target, target[perm])
    return mixed, lam * target + (1 - lam) * target[perm]
