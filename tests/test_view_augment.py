"""Tests for the per-patch log-mel view augmentations of contrastive pretraining (CPU only,
plus one CPU/CUDA agreement check that runs where CUDA is available)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import pytest
import torch

from bioclass.augment.views import (
    _draw_crop,
    _draw_shift,
    augment_views,
    blur,
    compression,
    gaussian_noise,
    mask,
    resized_crop,
    shift,
)
from bioclass.recipe.schema import (
    BlurView,
    CompressionView,
    GaussianNoiseView,
    MaskView,
    ResizedCropView,
    ShiftView,
    ViewAugmentSection,
)
from bioclass.recipe.validate import check_view_augment

FRAMES, MELS = 101, 64

# Every transform with prob 1 and its default ranges.
ALL_ON = ViewAugmentSection(
    resized_crop=ResizedCropView(prob=1.0),
    compression=CompressionView(prob=1.0),
    noise=GaussianNoiseView(prob=1.0),
    mask=MaskView(prob=1.0),
    shift=ShiftView(prob=1.0),
    blur=BlurView(prob=1.0),
)
ALL_OFF = ViewAugmentSection(
    resized_crop=ResizedCropView(prob=0.0),
    compression=CompressionView(prob=0.0),
    noise=GaussianNoiseView(prob=0.0),
    mask=MaskView(prob=0.0),
    shift=ShiftView(prob=0.0),
    blur=BlurView(prob=0.0),
)
Transform = Callable[[torch.Tensor, Any, torch.Generator], torch.Tensor]
# (transform, its part of ALL_ON), in augment_views' order.
STEPS: list[tuple[Transform, Any]] = [
    (resized_crop, ALL_ON.resized_crop),
    (compression, ALL_ON.compression),
    (gaussian_noise, ALL_ON.noise),
    (mask, ALL_ON.mask),
    (shift, ALL_ON.shift),
    (blur, ALL_ON.blur),
]
STEP_IDS = [fn.__name__ for fn, _ in STEPS]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def patches(n: int = 8, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, 1, FRAMES, MELS) random 'normalised log-mel' patches."""
    return torch.randn(n, 1, FRAMES, MELS, generator=gen(seed)).to(dtype)


# --- common contract --------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "part"), STEPS, ids=STEP_IDS)
def test_prob_zero_returns_an_unchanged_copy(fn: Transform, part: Any) -> None:
    x = patches()
    y = fn(x, replace(part, prob=0.0), gen())
    assert torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr()


def test_augment_views_all_off_is_a_copy_and_draws_nothing() -> None:
    x = patches()
    g = gen()
    state = g.get_state()
    y = augment_views(x, ALL_OFF, g)
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    assert torch.equal(g.get_state(), state)


def test_augment_views_skips_disabled_steps_without_drawing() -> None:
    # Only compression on: the result must match compression alone from the same seed, which
    # fails if the disabled resized_crop drew its coin flips first.
    x = patches()
    cfg = replace(ALL_OFF, compression=CompressionView(prob=1.0, min_ratio=0.3))
    assert torch.equal(augment_views(x, cfg, gen(4)), compression(x, cfg.compression, gen(4)))


def test_augment_views_applies_the_steps_in_field_order() -> None:
    x = patches()
    g = gen(9)
    expected = x
    for fn, part in STEPS:
        expected = fn(expected, part, g)
    assert torch.equal(augment_views(x, ALL_ON, gen(9)), expected)
    assert [f.name for f in fields(ViewAugmentSection)] == [
        "resized_crop",
        "compression",
        "noise",
        "mask",
        "shift",
        "blur",
    ]


@pytest.mark.parametrize(("fn", "part"), [*STEPS, (augment_views, ALL_ON)], ids=[*STEP_IDS, "all"])
def test_input_not_modified_shape_and_dtype_kept(fn: Transform, part: Any) -> None:
    x = patches()
    before = x.clone()
    y = fn(x, part, gen())
    assert torch.equal(x, before)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
    assert torch.isfinite(y).all()
    assert not torch.equal(y, x)


@pytest.mark.parametrize(("fn", "part"), [*STEPS, (augment_views, ALL_ON)], ids=[*STEP_IDS, "all"])
def test_deterministic_given_the_seed(fn: Transform, part: Any) -> None:
    x = patches()
    assert torch.equal(fn(x, part, gen(3)), fn(x, part, gen(3)))
    assert not torch.equal(fn(x, part, gen(3)), fn(x, part, gen(4)))
    g = gen(3)
    # Two calls on one generator (the two views of a pair) differ.
    assert not torch.equal(fn(x, part, g), fn(x, part, g))


@pytest.mark.parametrize(("fn", "part"), [*STEPS, (augment_views, ALL_ON)], ids=[*STEP_IDS, "all"])
def test_each_patch_draws_its_own_parameters(fn: Transform, part: Any) -> None:
    x = patches(1).repeat(8, 1, 1, 1)  # eight identical patches
    y = fn(x, part, gen(2))
    distinct = {tuple(p.flatten().tolist()) for p in y}
    if fn in (mask, shift):
        # Discrete draws can coincide (e.g. no stripe at all); most must still differ.
        assert len(distinct) >= 5
    else:
        assert len(distinct) == 8


@pytest.mark.parametrize(
    ("fn", "part"),
    [
        (resized_crop, ALL_ON.resized_crop),
        (compression, ALL_ON.compression),
        (gaussian_noise, ALL_ON.noise),
        (blur, BlurView(min_sigma=0.5)),
    ],
    ids=["resized_crop", "compression", "gaussian_noise", "blur"],
)
def test_prob_selects_a_random_subset_and_leaves_the_rest_bit_exact(
    fn: Transform, part: Any
) -> None:
    x = patches(200)
    y = fn(x, replace(part, prob=0.5), gen(5))
    changed = torch.tensor([not torch.equal(a, b) for a, b in zip(x, y, strict=True)])
    # Binomial(200, 0.5): 100 +- 7.
    assert 65 <= int(changed.sum()) <= 135
    # The others are bit-exact copies (that is what `changed` tests); a transform touching every
    # patch, even by rounding, would change all 200.


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_are_kept(dtype: torch.dtype) -> None:
    x32 = patches()
    x = x32.to(dtype)
    y = augment_views(x, ALL_ON, gen(6))
    assert y.dtype == dtype and y.shape == x.shape and torch.isfinite(y).all()
    # Half precision is computed in float32: same draws, so it tracks the float32 result.
    ref = augment_views(x.to(torch.float32), ALL_ON, gen(6))
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float64: 1e-5}[dtype]
    assert torch.allclose(y.to(torch.float32), ref, atol=tol * 4, rtol=tol)


def test_rejects_non_patch_input() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        augment_views(torch.zeros(2, 1, 10, 8, dtype=torch.int64), ALL_ON, gen())
    with pytest.raises(ValueError, match=r"\(B, C, frames, mels\)"):
        augment_views(torch.zeros(1, 10, 8), ALL_ON, gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_the_same_seed() -> None:
    x = patches(16)
    y_cpu = augment_views(x, ALL_ON, gen(8))
    y_gpu = augment_views(x.cuda(), ALL_ON, gen(8))
    assert y_gpu.device.type == "cuda"
    assert torch.allclose(y_gpu.cpu(), y_cpu, atol=1e-4)


# --- resized crop -----------------------------------------------------------------------------


def test_resized_crop_with_min_scale_one_is_identity() -> None:
    x = patches()
    y = resized_crop(x, ResizedCropView(prob=1.0, min_scale=1.0), gen())
    # float32 rounding of the sampling coordinates (~1e-6 cells) times the patch's gradients.
    assert torch.allclose(y, x, atol=1e-4)
    y64 = resized_crop(x.double(), ResizedCropView(prob=1.0, min_scale=1.0), gen())
    assert torch.allclose(y64, x.double(), atol=1e-10)


def test_resized_crop_keeps_a_constant_patch_constant_up_to_the_edges() -> None:
    # A crop at the very edge samples up to (1 - s) / 2 cell outside the patch; "border" padding
    # repeats the edge there, zero padding would pull edge cells towards 0.
    x = torch.full((512, 1, FRAMES, MELS), 2.5)
    y = resized_crop(x, ResizedCropView(prob=1.0, min_scale=0.5), gen(21))
    assert torch.allclose(y, x, atol=1e-5)


@pytest.mark.parametrize("axis", ["freq", "time"])
def test_resized_crop_samples_inside_the_patch(axis: str) -> None:
    # On a ramp (value = cell index) the output is the sampling coordinate clamped to the
    # patch: adjacent cells differ by s in [min_scale, 1], and by at least s - (1 - s) / 2 at
    # the edges. A crop reaching outside would repeat the edge value (differences near 0).
    n, min_scale = 256, 0.5
    x = torch.zeros(n, 1, FRAMES, MELS)
    x += torch.arange(MELS).float() if axis == "freq" else torch.arange(FRAMES).float()[:, None]
    y = resized_crop(x, ResizedCropView(prob=1.0, min_scale=min_scale), gen(22))
    diffs = y.diff(dim=3 if axis == "freq" else 2)
    assert diffs.min() >= min_scale - (1 - min_scale) / 2 - 1e-4
    assert diffs.max() <= 1 + 1e-4
    assert diffs.min() < 0.7 and diffs.max() > 0.95  # the scale really varies


def _line_profile(size: int, line: int, scale: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """(n, size) expected bilinear resampling of a one-cell line at `line` (derived by hand).

    Output cell p reads input coordinate p_in = s (p + 1/2 - size/2) + (c + 1) size/2 - 1/2.
    """
    p = torch.arange(size, dtype=torch.float64)
    s, c = scale.double()[:, None], centre.double()[:, None]
    p_in = s * (p + 0.5 - size / 2) + (c + 1) * size / 2 - 0.5  # (n, size)
    return (1 - (p_in - line).abs()).clamp_min(0)


@pytest.mark.parametrize("axis", ["freq", "time"])
def test_resized_crop_moves_and_stretches_a_line_as_predicted(axis: str) -> None:
    n, min_scale = 64, 0.8
    cfg = ResizedCropView(prob=1.0, min_scale=min_scale)
    x = torch.zeros(n, 1, FRAMES, MELS)
    if axis == "freq":
        line, size, dim = 32, MELS, 1  # horizontal line: one mel bin, every frame
        x[..., :, line] = 1.0
    else:
        line, size, dim = 50, FRAMES, 0  # vertical line: one frame, every mel bin
        x[..., line, :] = 1.0
    y = resized_crop(x, cfg, gen(11))

    _, scale, centre = _draw_crop(n, cfg, gen(11))
    expected = _line_profile(size, line, scale[:, dim], centre[:, dim]).float()  # (n, size)
    # The line stays a straight line: every frame (or bin) holds the same profile, also at the
    # edges (border padding does not darken them).
    got = y[:, 0] if axis == "freq" else y[:, 0].transpose(1, 2)  # (n, other, size)
    assert torch.allclose(got, expected[:, None, :].expand_as(got), atol=1e-4)

    # Public behaviour independent of the draw order: stretched, never shrunk. The line becomes
    # a tent of half-width 1/s; its samples sum to 1/s on average over sub-cell positions.
    profile = got[:, 0]  # (n, size)
    mass = profile.sum(dim=1)
    assert (mass >= 1 - 1e-4).all()
    assert 1.03 < float(mass.mean()) < 1 / min_scale
    # ... and moved within the reach of a crop of scale >= min_scale (8.1 cells for the
    # centre line of 64 mel bins, 12.6 frames for the centre frame of 101) in both directions.
    pos = (profile * torch.arange(size)).sum(dim=1) / mass
    x_in = (2 * line + 1) / size - 1
    reach = (abs(x_in) + 1) * (1 - min_scale) / min_scale * size / 2
    assert ((pos - line).abs() <= reach + 0.5).all()
    assert (pos < line - 1).any() and (pos > line + 1).any()


# --- compression ------------------------------------------------------------------------------


def test_compression_scales_deviations_from_the_patch_mean() -> None:
    cfg = CompressionView(prob=1.0, min_ratio=0.4)
    x = patches(64) * 2.0 + torch.linspace(-1, 1, 64).view(-1, 1, 1, 1)  # varied means
    y = compression(x, cfg, gen())
    mean_x, mean_y = x.mean(dim=(1, 2, 3)), y.mean(dim=(1, 2, 3))
    assert torch.allclose(mean_y, mean_x, atol=1e-5)
    ratio = y.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert (ratio >= 0.4 - 1e-5).all() and (ratio <= 1 + 1e-5).all()
    assert ratio.max() - ratio.min() > 0.3  # drawn per patch across [0.4, 1]
    # One ratio per patch: y - m = r (x - m) cell by cell.
    dev_x = x - mean_x.view(-1, 1, 1, 1)
    dev_y = y - mean_y.view(-1, 1, 1, 1)
    assert torch.allclose(dev_y, ratio.view(-1, 1, 1, 1) * dev_x, atol=1e-4)


# --- Gaussian noise ---------------------------------------------------------------------------


def test_gaussian_noise_adds_the_expected_variance() -> None:
    max_std, n = 0.3, 64
    x = torch.zeros(n, 1, 200, 128)  # 25,600 cells per patch
    y = gaussian_noise(x, GaussianNoiseView(prob=1.0, max_std=max_std), gen(12))
    std = y.std(dim=(1, 2, 3))
    assert (std <= max_std * 1.03).all()
    assert (y.mean(dim=(1, 2, 3)).abs() <= 5 * std / 160 + 1e-6).all()  # zero mean
    # sigma ~ U[0, max_std]: E[sigma^2] = max_std^2 / 3 (sd of the mean of 64: 0.037 max_std^2).
    assert abs(float((std**2).mean()) - max_std**2 / 3) < 0.12 * max_std**2
    assert std.min() < 0.25 * max_std and std.max() > 0.75 * max_std
    # White: neighbouring cells uncorrelated.
    lag = (y[..., 1:, :] * y[..., :-1, :]).sum() / (y * y).sum()
    assert abs(float(lag)) < 0.02


# --- SpecAugment masks ------------------------------------------------------------------------


def _runs(flags: torch.Tensor) -> int:
    """Number of maximal runs of True in a 1-D bool tensor."""
    starts = flags.clone()
    starts[1:] &= ~flags[:-1]
    return int(starts.sum())


def test_mask_zeros_whole_stripes_and_nothing_else() -> None:
    cfg = MaskView(prob=1.0, time_stripes=2, time_width=10, freq_stripes=2, freq_width=8)
    x = 1.0 + torch.rand(256, 1, FRAMES, MELS, generator=gen(13))  # no zero anywhere
    y = mask(x, cfg, gen(14))
    time_runs, freq_runs, n_rows, n_cols = [], [], [], []
    for xi, yi in zip(x[:, 0], y[:, 0], strict=True):
        zero = yi == 0
        rows, cols = zero.all(dim=1), zero.all(dim=0)  # (FRAMES,), (MELS,)
        # Only whole frames and whole mel bins are masked; the rest is untouched.
        assert torch.equal(zero, rows[:, None] | cols[None, :])
        assert torch.equal(yi[~zero], xi[~zero])
        time_runs.append(_runs(rows))
        freq_runs.append(_runs(cols))
        n_rows.append(int(rows.sum()))
        n_cols.append(int(cols.sum()))
    # At most 2 stripes per axis, each at most the maximum width (overlaps only merge them).
    assert max(time_runs) == 2 and max(freq_runs) == 2
    assert max(n_rows) <= 20 and max(n_cols) <= 16
    assert min(time_runs) == 0 and min(freq_runs) == 0  # 0 stripes is a possible draw
    assert max(n_rows) > 10 and max(n_cols) > 8  # two stripes together can exceed one width


# --- shift ------------------------------------------------------------------------------------


def _shifted(patch: torch.Tensor, dt: int, df: int) -> torch.Tensor:
    """(C, F, M) patch moved by dt frames and df bins with zero fill (by slicing)."""
    out = torch.zeros_like(patch)
    _, n_frames, n_mels = patch.shape
    out[:, max(dt, 0) : n_frames + min(dt, 0), max(df, 0) : n_mels + min(df, 0)] = patch[
        :, max(-dt, 0) : n_frames - max(dt, 0), max(-df, 0) : n_mels - max(df, 0)
    ]
    return out


def test_shift_moves_by_exactly_the_drawn_offsets_with_zero_fill() -> None:
    cfg = ShiftView(prob=1.0, max_time_frames=10, max_freq_bins=4)
    x = patches(32)
    y = shift(x, cfg, gen(15))
    _, dt, df = _draw_shift(32, cfg, gen(15))
    for xi, yi, a, b in zip(x, y, dt.tolist(), df.tolist(), strict=True):
        assert torch.equal(yi, _shifted(xi, a, b))
    assert dt.abs().max() <= 10 and df.abs().max() <= 4
    assert (dt < 0).any() and (dt > 0).any() and (df < 0).any() and (df > 0).any()


def test_shift_moves_a_delta_and_never_wraps_around() -> None:
    cfg = ShiftView(prob=1.0, max_time_frames=10, max_freq_bins=4)
    n = 64
    x = torch.zeros(n, 1, FRAMES, MELS)
    x[:, 0, 50, 30] = 3.0
    x[:, 0, :, MELS - 1] = 1.0  # energy in the top mel bin
    y = shift(x, cfg, gen(16))
    offsets = set()
    for yi in y[:, 0]:
        hits = (yi == 3.0).nonzero()
        assert hits.shape[0] == 1  # the delta moved intact (and nothing else became 3)
        t, f = hits[0].tolist()
        assert abs(t - 50) <= 10 and abs(f - 30) <= 4
        offsets.add((t - 50, f - 30))
        # The top bin moves down by at most 4 bins or off the top; a roll would bring it to the
        # lowest bins. Below its reach only the delta is non-zero.
        low = yi[:, : MELS - 5]
        assert int((low != 0).sum()) == int((low == 3.0).sum())
        # Vacated frames at the start/end are zero, not wrapped copies of the other end.
        if t > 50:
            assert (yi[: t - 50] == 0).all()
        if t < 50:
            assert (yi[FRAMES - (50 - t) :] == 0).all()
    assert len(offsets) > 20


def test_shift_offsets_cover_exactly_the_configured_range() -> None:
    cfg = ShiftView(prob=1.0, max_time_frames=2, max_freq_bins=1)
    x = torch.zeros(300, 1, FRAMES, MELS)
    x[:, 0, 50, 30] = 1.0
    y = shift(x, cfg, gen(18))
    hits = y[:, 0].nonzero()[:, 1:]  # (300, 2): (frame, bin) of each moved delta
    assert hits.shape[0] == 300
    offsets = {(t - 50, f - 30) for t, f in hits.tolist()}
    assert offsets == {(dt, df) for dt in range(-2, 3) for df in range(-1, 2)}


# --- blur -------------------------------------------------------------------------------------


def test_blur_keeps_a_constant_patch_constant_up_to_the_edges() -> None:
    x = torch.full((8, 1, FRAMES, MELS), 2.5)
    y = blur(x, BlurView(prob=1.0, min_sigma=0.5, max_sigma=4.0), gen())
    assert torch.allclose(y, x, atol=1e-5)  # zero padding would darken every edge


def _moments(img: torch.Tensor) -> tuple[float, float, float, float, float]:
    """Mass, centroid and variance along (frames, mels) of one (F, M) image."""
    t = torch.arange(img.shape[0], dtype=img.dtype)
    f = torch.arange(img.shape[1], dtype=img.dtype)
    mass = img.sum()
    pt, pf = img.sum(dim=1) / mass, img.sum(dim=0) / mass
    ct, cf = (t * pt).sum(), (f * pf).sum()
    var_t, var_f = ((t - ct) ** 2 * pt).sum(), ((f - cf) ** 2 * pf).sum()
    return float(mass), float(ct), float(cf), float(var_t), float(var_f)


@pytest.mark.parametrize("sigma", [1.2, 2.0])
def test_blur_spreads_a_delta_with_the_drawn_sigma(sigma: float) -> None:
    x = torch.zeros(2, 1, FRAMES, MELS, dtype=torch.float64)
    x[:, 0, 50, 32] = 1.0
    y = blur(x, BlurView(prob=1.0, min_sigma=sigma, max_sigma=sigma), gen())
    mass, ct, cf, var_t, var_f = _moments(y[0, 0])
    assert mass == pytest.approx(1.0, abs=1e-9)
    assert (ct, cf) == (pytest.approx(50.0), pytest.approx(32.0))
    # Truncation at ceil(3 sigma) trims the variance by under 2 %.
    assert var_t == pytest.approx(sigma**2, rel=0.03)
    assert var_f == pytest.approx(sigma**2, rel=0.03)


def test_blur_sigma_varies_per_patch_within_its_range() -> None:
    n, lo, hi = 32, 0.8, 2.0
    x = torch.zeros(n, 1, FRAMES, MELS, dtype=torch.float64)
    x[:, 0, 50, 32] = 1.0
    y = blur(x, BlurView(prob=1.0, min_sigma=lo, max_sigma=hi), gen(17))
    sig = []
    for yi in y[:, 0]:
        _, _, _, var_t, var_f = _moments(yi)
        assert var_t == pytest.approx(var_f, rel=1e-6)  # isotropic
        sig.append(var_t**0.5)
    assert min(sig) >= lo * 0.97 and max(sig) <= hi * 1.01
    assert max(sig) - min(sig) > 0.6


def test_blur_with_zero_sigma_leaves_patches_unchanged() -> None:
    x = patches()
    assert torch.equal(blur(x, BlurView(prob=1.0, min_sigma=0.0, max_sigma=0.0), gen()), x)
    y = blur(x, BlurView(prob=1.0, min_sigma=0.0, max_sigma=1.0), gen())
    assert torch.isfinite(y).all()


# --- validation -------------------------------------------------------------------------------


def test_default_and_all_on_sections_are_valid() -> None:
    assert check_view_augment(ViewAugmentSection()) == []
    assert check_view_augment(ALL_ON) == []
    assert check_view_augment(ALL_OFF) == []


def test_every_field_is_validated() -> None:
    # -1 is out of range for every field (prob, scale, ratio, std, count, width, sigma); a field
    # added to the schema without a check fails here.
    cfg = ViewAugmentSection()
    for section in fields(cfg):
        part = getattr(cfg, section.name)
        for f in fields(part):
            bad = replace(cfg, **{section.name: replace(part, **{f.name: -1})})
            problems = check_view_augment(bad)
            key = f"pretrain.views.{section.name}.{f.name} must be"
            assert any(p.startswith(key) for p in problems), (key, problems)
            assert len(problems) == 1, problems


@pytest.mark.parametrize(
    ("section", "changes", "message"),
    [
        (
            "resized_crop",
            {"min_scale": 0.0},
            "pretrain.views.resized_crop.min_scale must be in (0, 1]",
        ),
        (
            "resized_crop",
            {"min_scale": 1.2},
            "pretrain.views.resized_crop.min_scale must be in (0, 1]",
        ),
        ("resized_crop", {"prob": 1.5}, "pretrain.views.resized_crop.prob must be in [0, 1]"),
        ("noise", {"prob": float("nan")}, "pretrain.views.noise.prob must be in [0, 1]"),
        (
            "compression",
            {"min_ratio": 0.0},
            "pretrain.views.compression.min_ratio must be in (0, 1]",
        ),
        ("noise", {"max_std": float("inf")}, "pretrain.views.noise.max_std must be a finite"),
        ("mask", {"time_width": 2.5}, "pretrain.views.mask.time_width must be an integer >= 0"),
        ("mask", {"freq_stripes": True}, "pretrain.views.mask.freq_stripes must be an integer"),
        ("shift", {"max_freq_bins": -2}, "pretrain.views.shift.max_freq_bins must be an integer"),
        ("blur", {"min_sigma": 2.0, "max_sigma": 1.0}, "pretrain.views.blur.max_sigma must be"),
        ("blur", {"min_sigma": "1"}, "pretrain.views.blur.min_sigma must be a finite number"),
    ],
)
def test_validation_messages(section: str, changes: dict[str, Any], message: str) -> None:
    cfg = ViewAugmentSection()
    bad = replace(cfg, **{section: replace(getattr(cfg, section), **changes)})
    problems = check_view_augment(bad)
    assert len(problems) == 1 and problems[0].startswith(message), problems
    assert "got" in problems[0]


def test_validation_collects_every_problem_under_a_custom_prefix() -> None:
    bad = replace(
        ViewAugmentSection(),
        compression=CompressionView(prob=2.0, min_ratio=1.5),
        blur=BlurView(min_sigma=-1.0, max_sigma=-2.0),
    )
    problems = check_view_augment(bad, prefix="views")
    assert [p.split(" must")[0] for p in problems] == [
        "views.compression.prob",
        "views.compression.min_ratio",
        "views.blur.min_sigma",
        "views.blur.max_sigma",
    ]
