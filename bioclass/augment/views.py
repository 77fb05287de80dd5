"""Per-patch log-mel augmentations for contrastive pretraining (Fonseca et al., 2021).

`bioclass pretrain` cuts two time-frequency patches from one recording and turns each into a
"view" by augmenting it independently; the encoder must then match the two views. The paper's
transforms act directly on the patches: random resized crop (small stretches in time and
frequency plus a small frequency transposition), compression of the dynamic range, Gaussian
noise, SpecAugment masks, time/frequency shifts and Gaussian blur. Every patch draws its own
parameters (and its own coin flip for whether the transform applies at all).

Conventions shared by every transform here:

- Input: a floating-point (B, C, frames, mels) tensor, C = 1 for the model's patches, holding
  normalised log-mels whose zero is the mean level (the front end ends in a BatchNorm over mel
  bins). Masked and vacated cells are therefore set to 0.
- Random numbers come from the CPU `torch.Generator` passed in and are drawn on the CPU, then
  moved to the tensor's device, so a seed gives the same augmentation on CPU and CUDA (up to
  float rounding).
- A transform applies to each patch with probability `cfg.prob`; unselected patches come back
  bit for bit unchanged. The result is always a new tensor; the input is never modified.
- Shape, dtype and device are kept. float16/bfloat16 patches are augmented in float32 and cast
  back (grid_sample and grouped convolutions are slow or missing for them on CPU).
- Parameter ranges are not checked on every call: `bioclass.recipe.validate.check_view_augment`
  validates a recipe's `pretrain.views` section once, when the recipe is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bioclass.augment.stripes import stripe_cells, striped_cells
from bioclass.recipe.schema import (
    BlurView,
    CompressionView,
    GaussianNoiseView,
    MaskView,
    ResizedCropView,
    ShiftView,
    ViewAugmentSection,
)

# Dtypes the transforms compute in directly; others (half precision) go through float32.
_WORK_DTYPES = (torch.float32, torch.float64)


def _check_patches(x: torch.Tensor) -> None:
    """Raise ValueError unless `x` is a floating-point (B, C, frames, mels) tensor."""
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            "view augmentations expect a floating-point (B, C, frames, mels) tensor, "
            f"got shape {tuple(x.shape)} and dtype {x.dtype}"
        )


def _select(n: int, prob: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) bool on the CPU: which patches a transform applies to (one coin per patch)."""
    # rand is in [0, 1): prob 1 selects every patch, prob 0 none.
    return torch.rand(n, generator=gen) < prob


def _apply(
    x: torch.Tensor,
    selected: torch.Tensor,
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Replace the selected patches of `x` by `fn(patches, indices)`.

    Args:
        x: (B, C, F, M) patches.
        selected: (B,) bool on the CPU.
        fn: maps (n, C, F, M) patches (in a float32/float64 working dtype) and their (n,) CPU
            batch indices, used to pick their parameters, to (n, C, F, M) augmented patches.
            It must not modify its input.
    Returns:
        (B, C, F, M) new tensor, dtype and device of `x`.
    """
    if not bool(selected.any()):
        return x.clone()
    work = x.dtype if x.dtype in _WORK_DTYPES else torch.float32
    if bool(selected.all()):
        # Common case (prob 1): no gather/scatter of the subset.
        return fn(x.to(work), torch.arange(x.shape[0])).to(x.dtype)
    idx = selected.nonzero().squeeze(1)  # (n,) CPU
    idx_dev = idx.to(x.device)
    out = x.clone()
    out[idx_dev] = fn(x[idx_dev].to(work), idx).to(x.dtype)  # (n, C, F, M) into (B, C, F, M)
    return out


def _per_patch(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n,) CPU values -> (n, 1, 1, 1) on the device and in the dtype of `like`."""
    return values.to(like.device, like.dtype).view(-1, 1, 1, 1)


def _draw_crop(
    n: int, cfg: ResizedCropView, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw the resized-crop parameters of `n` patches (in this order, all on the CPU).

    Returns:
        selected (n,) bool; scale (n, 2) crop fractions of the (time, freq) axes, uniform in
        [min_scale, 1]; centre (n, 2) crop centres in the [-1, 1] coordinates of
        `affine_grid` (align_corners=False), uniform over positions that keep the crop inside.
    """
    selected = _select(n, cfg.prob, gen)
    u = torch.rand(n, 4, generator=gen)  # (n, 4)
    scale = cfg.min_scale + (1.0 - cfg.min_scale) * u[:, :2]  # (n, 2)
    centre = (1.0 - scale) * (2.0 * u[:, 2:] - 1.0)  # (n, 2)
    return selected, scale, centre


def resized_crop(x: torch.Tensor, cfg: ResizedCropView, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop: crop part of each patch and stretch it back to the full size.

    Per selected patch the crop keeps a fraction uniform in [min_scale, 1] of the frames and,
    independently, of the mel bins (small stretches in time and frequency) at a uniform random
    position inside the patch (a small frequency transposition and time offset). Resampling is
    bilinear: `grid_sample` (align_corners=False) on the grid `affine_grid` would give for a
    per-patch scale-and-translate matrix. Output cells at the patch edge sample up to half a
    cell outside the input; padding_mode="border" repeats the edge cell there rather than
    mixing in zeros, so edges are not pulled towards the mean.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch and `min_scale` in (0, 1] (1: identity).
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    selected, scale, centre = _draw_crop(x.shape[0], cfg, gen)

    def crop(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        n, _, n_frames, n_mels = sub.shape
        # The affine map has no rotation, so the grid affine_grid would build is an outer
        # "sum" of two 1-D maps; building it by broadcasting is several times faster on CPU.
        # Output cell centres in [-1, 1] (align_corners=False): (2 i + 1) / N - 1.
        base_t = (2 * torch.arange(n_frames, dtype=sub.dtype) + 1) / n_frames - 1  # (F,)
        base_f = (2 * torch.arange(n_mels, dtype=sub.dtype) + 1) / n_mels - 1  # (M,)
        s = scale[idx].to(sub.dtype)  # (n, 2)
        c = centre[idx].to(sub.dtype)  # (n, 2)
        src_t = s[:, 0:1] * base_t + c[:, 0:1]  # (n, F): input coordinate of each frame
        src_f = s[:, 1:2] * base_f + c[:, 1:2]  # (n, M)
        # grid_sample reads (x, y) = (mels, frames): the last axis first.
        grid = torch.stack(  # (n, F, M, 2)
            (
                src_f[:, None, :].expand(n, n_frames, n_mels),
                src_t[:, :, None].expand(n, n_frames, n_mels),
            ),
            dim=-1,
        ).to(sub.device)
        return F.grid_sample(  # (n, C, F, M) -> (n, C, F, M)
            sub, grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    return _apply(x, selected, crop)


def compression(x: torch.Tensor, cfg: CompressionView, gen: torch.Generator) -> torch.Tensor:
    """Compress each patch's dynamic range: x -> m + r (x - m).

    m is the patch mean (over channels, frames and mels) and r is uniform in [min_ratio, 1] per
    patch, so the mean is kept and the standard deviation shrinks by r.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch and `min_ratio` in (0, 1].
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    n = x.shape[0]
    selected = _select(n, cfg.prob, gen)
    ratio = cfg.min_ratio + (1.0 - cfg.min_ratio) * torch.rand(n, generator=gen)  # (n,)

    def compress(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        mean = sub.mean(dim=(1, 2, 3), keepdim=True)  # (n, C, F, M) -> (n, 1, 1, 1)
        return mean + _per_patch(ratio[idx], sub) * (sub - mean)

    return _apply(x, selected, compress)


def gaussian_noise(x: torch.Tensor, cfg: GaussianNoiseView, gen: torch.Generator) -> torch.Tensor:
    """Add white Gaussian noise N(0, sigma^2), sigma uniform in [0, max_std] per patch.

    The noise itself is drawn on the CPU (so CPU and CUDA runs agree) and then moved over.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch and `max_std` (normalised log-mel units).
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    n = x.shape[0]
    selected = _select(n, cfg.prob, gen)
    sigma = cfg.max_std * torch.rand(n, generator=gen)  # (n,)

    def add_noise(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # Always drawn in float32, so a seed gives the same noise for every input dtype.
        noise = torch.randn(sub.shape, generator=gen)  # (n, C, F, M) on CPU
        return sub + _per_patch(sigma[idx], sub) * noise.to(sub.device, sub.dtype)

    return _apply(x, selected, add_noise)


def _draw_stripes(
    n: int, size: int, max_stripes: int, max_width: int, gen: torch.Generator
) -> torch.Tensor:
    """(n, size) bool on the CPU: cells covered by 0..max_stripes stripes of 0..max_width cells.

    Stripes may overlap; each lies wholly inside the axis. Drawn per patch and all at once from
    a torch generator (training's batch-level `spec_augment` draws one number at a time from
    numpy instead); each keeps its own order, which every earlier run's results depend on.
    """
    if max_stripes <= 0 or max_width <= 0 or size <= 0:
        return torch.zeros(n, size, dtype=torch.bool)
    count = torch.randint(0, max_stripes + 1, (n, 1), generator=gen)  # (n, 1)
    width = torch.randint(0, min(max_width, size) + 1, (n, max_stripes), generator=gen)  # (n, S)
    # start uniform in [0, size - width]; the clamp guards float rounding of rand * span.
    span = size - width + 1
    start = (torch.rand(n, max_stripes, generator=gen) * span).long()  # (n, S)
    start = torch.minimum(start, span - 1)
    active = torch.arange(max_stripes) < count  # (n, S): only the first `count` stripes
    return stripe_cells(size, start, width.masked_fill(~active, 0))  # (n, size)


def mask(x: torch.Tensor, cfg: MaskView, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment per patch: zero whole time and frequency stripes.

    Each selected patch gets 0..time_stripes stripes of 0..time_width frames and
    0..freq_stripes stripes of 0..freq_width mel bins (counts, widths and positions uniform,
    drawn per patch; stripes may overlap). Masked cells are set to 0, the mean level.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch, stripe counts and maximum widths.
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    n, _, n_frames, n_mels = x.shape
    selected = _select(n, cfg.prob, gen)
    in_time = _draw_stripes(n, n_frames, cfg.time_stripes, cfg.time_width, gen)  # (n, F)
    in_freq = _draw_stripes(n, n_mels, cfg.freq_stripes, cfg.freq_width, gen)  # (n, M)

    def zero_stripes(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        cells = striped_cells(in_time[idx], in_freq[idx])[:, None]  # (n, 1, F, M)
        return sub.masked_fill(cells.to(sub.device), 0.0)

    return _apply(x, selected, zero_stripes)


def _draw_shift(
    n: int, cfg: ShiftView, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw the shift parameters of `n` patches (in this order, all on the CPU).

    Returns:
        selected (n,) bool; frame offsets (n,) in [-max_time_frames, max_time_frames]; bin
        offsets (n,) in [-max_freq_bins, max_freq_bins] (int64).
    """
    selected = _select(n, cfg.prob, gen)
    dt = torch.randint(-cfg.max_time_frames, cfg.max_time_frames + 1, (n,), generator=gen)
    df = torch.randint(-cfg.max_freq_bins, cfg.max_freq_bins + 1, (n,), generator=gen)
    return selected, dt, df


def shift(x: torch.Tensor, cfg: ShiftView, gen: torch.Generator) -> torch.Tensor:
    """Shift each patch by whole frames and mel bins; vacated cells become 0.

    A positive time offset moves content later (to higher frame indices), a positive frequency
    offset moves it up (to higher mel bins). Content shifted past an edge is dropped, not
    wrapped: a roll would move the highest bins to the bottom of the spectrum.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch, `max_time_frames` and `max_freq_bins`.
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    selected, dt, df = _draw_shift(x.shape[0], cfg, gen)

    pad_t, pad_f = max(cfg.max_time_frames, 0), max(cfg.max_freq_bins, 0)

    def move(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        n, c, n_frames, n_mels = sub.shape
        # Zero margins as wide as the largest shift: every source cell then exists (a margin
        # cell is a vacated cell), so one gather does both axes and the fill.
        padded = F.pad(sub, (pad_f, pad_f, pad_t, pad_t))  # (n, C, F, M) -> (n, C, F', M')
        width = n_mels + 2 * pad_f
        rows = torch.arange(n_frames) - dt[idx, None] + pad_t  # (n, F): source row in padded
        cols = torch.arange(n_mels) - df[idx, None] + pad_f  # (n, M): source column in padded
        flat_idx = rows[:, :, None] * width + cols[:, None, :]  # (n, F, M)
        flat_idx = flat_idx.to(sub.device).view(n, 1, -1).expand(n, c, -1)  # (n, C, F*M)
        out = padded.reshape(n, c, -1).gather(2, flat_idx)  # (n, C, F'*M') -> (n, C, F*M)
        return out.view(n, c, n_frames, n_mels)  # (n, C, F*M) -> (n, C, F, M)

    return _apply(x, selected, move)


def blur(x: torch.Tensor, cfg: BlurView, gen: torch.Generator) -> torch.Tensor:
    """Isotropic 2-D Gaussian blur, sigma uniform in [min_sigma, max_sigma] cells per patch.

    Separable: a per-patch 1-D kernel over frames then over mel bins, run as grouped
    convolutions (one group per patch and channel). Every kernel has radius
    ceil(3 * max_sigma) and sums to 1. The patch is padded with "replicate" (edge cells
    repeated) rather than zeros, which would darken the edges towards the mean, or "reflect",
    which fails when the radius reaches the patch size: a constant patch stays constant.

    Args:
        x: (B, C, frames, mels) patches.
        cfg: `prob` per patch, `min_sigma` and `max_sigma` (cells; sigma 0 leaves a patch as is).
        gen: CPU generator.
    Returns:
        (B, C, frames, mels) new tensor.
    """
    _check_patches(x)
    n = x.shape[0]
    selected = _select(n, cfg.prob, gen)
    sigma = cfg.min_sigma + (cfg.max_sigma - cfg.min_sigma) * torch.rand(n, generator=gen)
    radius = max(0, math.ceil(3.0 * cfg.max_sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)  # (K,)

    def smooth(sub: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if radius == 0:
            return sub.clone()  # single-tap kernel: nothing to blur
        m, c, n_frames, n_mels = sub.shape
        k = taps.numel()
        # clamp: sigma 0 gives a unit impulse instead of 0/0.
        s = sigma[idx].double().clamp_min(1e-6)[:, None]  # (n, 1)
        kernel = torch.exp(-0.5 * (taps / s) ** 2)  # (n, K)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        kernel = kernel.repeat_interleave(c, dim=0).to(sub.device, sub.dtype)  # (n*C, K)
        flat = sub.reshape(1, m * c, n_frames, n_mels)  # (n, C, F, M) -> (1, nC, F, M)
        pad = (radius, radius, radius, radius)
        flat = F.pad(flat, pad, mode="replicate")  # (1, nC, F, M) -> (1, nC, F+2R, M+2R)
        flat = F.conv2d(flat, kernel.view(m * c, 1, k, 1), groups=m * c)  # (1, nC, F, M+2R)
        flat = F.conv2d(flat, kernel.view(m * c, 1, 1, k), groups=m * c)  # (1, nC, F, M)
        return flat.view(m, c, n_frames, n_mels)  # (1, nC, F, M) -> (n, C, F, M)

    return _apply(x, selected, smooth)


def augment_views(x: torch.Tensor, cfg: ViewAugmentSection, gen: torch.Generator) -> torch.Tensor:
    """Apply every enabled view augmentation in the order of the section's fields.

    Order: resized_crop, compression, noise, mask, shift, blur. Transforms with prob 0 are
    skipped without drawing from `gen` (so which transforms are enabled changes the draws of
    those after them).

    Args:
        x: (B, C, frames, mels) normalised log-mel patches (C = 1 for the model's patches).
        cfg: the recipe's `pretrain.views` section (validated when the recipe is loaded).
        gen: CPU generator; call once per view so the two views differ.
    Returns:
        (B, C, frames, mels) new tensor with the dtype and device of `x`.
    """
    _check_patches(x)
    steps: tuple[tuple[Callable[[torch.Tensor, Any, torch.Generator], torch.Tensor], Any], ...] = (
        (resized_crop, cfg.resized_crop),
        (compression, cfg.compression),
        (gaussian_noise, cfg.noise),
        (mask, cfg.mask),
        (shift, cfg.shift),
        (blur, cfg.blur),
    )
    out = x
    for transform, part in steps:
        if part.prob > 0:
            out = transform(out, part, gen)
    return x.clone() if out is x else out
