"""Behavioural tests of the CLAR / SoundCLR waveform augmentations (`bioclass.augment.wave`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bioclass.audio import fit_length
from bioclass.augment.wave import (
    add_noise,
    augment_wave,
    coloured_noise,
    fade,
    fade_curve,
    is_active,
    pitch_shift,
    place,
    random_scale,
    scale_wave,
    shift_pitch,
    stretch_wave,
    time_mask,
    time_shift,
    time_stretch,
    trim_silence,
)
from bioclass.recipe.schema import (
    FadeAugment,
    NoiseAugment,
    PitchShiftAugment,
    ScaleAugment,
    TimeMaskAugment,
    TimeShiftAugment,
    TimeStretchAugment,
    TrimSilenceAugment,
    WaveAugmentSection,
)
from bioclass.recipe.validate import check_wave_augment
from bioclass.recipe.vocab import FADE_SHAPES

SR = 8000


def tone(freq: float = 440.0, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine at SR."""
    t = np.arange(int(round(seconds * SR))) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(wave: np.ndarray) -> float:
    """Frequency of the strongest spectral peak (Hann window, zero-padded FFT)."""
    n_fft = 1 << 17
    mag = np.abs(np.fft.rfft(wave * np.hanning(len(wave)), n=n_fft))
    return float(np.argmax(mag)) * SR / n_fft


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


def spectral_slope(noise: np.ndarray) -> float:
    """Log-log slope of the periodogram against frequency (bins 1 .. n/2)."""
    power = np.abs(np.fft.rfft(noise.astype(np.float64))) ** 2
    k = np.arange(1, power.shape[0])
    return float(np.polyfit(np.log(k), np.log(power[1:]), 1)[0])


def all_on(**overrides) -> WaveAugmentSection:
    """Every augmentation with probability 1 and random padding / cropping."""
    cfg = WaveAugmentSection(
        trim_silence=TrimSilenceAugment(prob=1.0),
        scale=ScaleAugment(prob=1.0),
        pitch_shift=PitchShiftAugment(prob=1.0),
        time_stretch=TimeStretchAugment(prob=1.0),
        random_pad_crop=True,
        fade=FadeAugment(prob=1.0),
        time_mask=TimeMaskAugment(prob=1.0),
        time_shift=TimeShiftAugment(prob=1.0),
        noise=NoiseAugment(prob=1.0),
    )
    return replace(cfg, **overrides)


# --------------------------------------------------------------------------- fade


def test_fade_curves_go_from_zero_to_one_with_their_shape():
    n = 1000
    for shape in FADE_SHAPES:
        g = fade_curve(shape, n)
        assert g.shape == (n,) and g.dtype == np.float32
        assert g[0] == 0.0 and 0.99 < g[-1] < 1.0
        assert np.all(np.diff(g) > 0)
    mid = {s: float(fade_curve(s, n)[n // 2]) for s in FADE_SHAPES}
    assert mid["linear"] == pytest.approx(0.5)
    assert mid["logarithmic"] == pytest.approx(np.log10(5.5), abs=1e-4)  # concave: above 0.5
    assert mid["exponential"] == pytest.approx((10**0.5 - 1) / 9, abs=1e-4)  # convex: below
    with pytest.raises(ValueError, match="linear, logarithmic, exponential"):
        fade_curve("cosine", 10)


@pytest.mark.parametrize("shape", FADE_SHAPES)
def test_fade_envelope_at_both_ends(shape):
    n = 4000
    ones = np.ones(n, dtype=np.float32)
    cfg = FadeAugment(prob=1.0, max_fraction=0.5, shapes=[shape])
    seen_long = False
    for seed in range(8):
        out = fade(ones, np.random.default_rng(seed), cfg)
        assert out.shape == (n,) and out.dtype == np.float32
        n_in = int(np.argmax(out >= 1.0))  # first sample at full gain
        n_out = int(np.argmax(out[::-1] >= 1.0))
        assert n_in <= n // 2 and n_out <= n // 2
        np.testing.assert_allclose(out[:n_in], fade_curve(shape, n_in), atol=1e-6)
        np.testing.assert_allclose(out[n - n_out :], fade_curve(shape, n_out)[::-1], atol=1e-6)
        assert np.all(out[n_in : n - n_out] == 1.0)
        seen_long |= min(n_in, n_out) > 200
    assert seen_long
    assert np.all(ones == 1.0)  # input untouched


def test_fade_rejects_unknown_shape():
    with pytest.raises(ValueError, match="linear, logarithmic, exponential"):
        fade(tone(), np.random.default_rng(0), FadeAugment(prob=1.0, shapes=["sigmoid"]))


# --------------------------------------------------------------------------- time mask


def test_time_mask_zero_fill_blanks_one_short_segment():
    n = 4000
    x = np.ones(n, dtype=np.float32)
    cfg = TimeMaskAugment(prob=1.0, max_fraction=0.125, fill="zero")
    lengths = []
    for seed in range(10):
        out = time_mask(x, np.random.default_rng(seed), cfg)
        zeros = np.flatnonzero(out == 0.0)
        assert np.all(out[out != 0.0] == 1.0)
        if zeros.size:
            assert zeros[-1] - zeros[0] + 1 == zeros.size  # one contiguous segment
        assert zeros.size <= n // 8
        lengths.append(zeros.size)
    assert len(set(lengths)) > 3 and max(lengths) > 100


def test_time_mask_noise_fill_at_clip_rms():
    x = tone(seconds=1.0) + 0.3
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    cfg = TimeMaskAugment(prob=1.0, max_fraction=0.5, fill="noise")
    for seed in range(20):
        out = time_mask(x, np.random.default_rng(seed), cfg)
        changed = np.flatnonzero(out != x)
        if changed.size < 1000:
            continue
        assert changed[-1] - changed[0] + 1 <= len(x) // 2
        segment = out[changed[0] : changed[-1] + 1]
        assert abs(float(np.mean(segment))) < 0.1 * rms  # zero-mean Gaussian, not the clip
        assert float(np.std(segment)) == pytest.approx(rms, rel=0.1)
        break
    else:
        pytest.fail("no seed gave a long mask")


def test_time_mask_rejects_unknown_fill():
    with pytest.raises(ValueError, match="noise, zero"):
        time_mask(tone(), np.random.default_rng(0), TimeMaskAugment(prob=1.0, fill="mean"))


# --------------------------------------------------------------------------- time shift


def test_time_shift_is_a_roll_within_the_limit():
    n = 1000
    x = np.random.default_rng(123).standard_normal(n).astype(np.float32)
    cfg = TimeShiftAugment(prob=1.0, max_fraction=0.25)
    shifts = set()
    for seed in range(20):
        out = time_shift(x, np.random.default_rng(seed), cfg)
        matches = [k for k in range(-n // 2, n // 2) if np.array_equal(out, np.roll(x, k))]
        assert len(matches) == 1
        assert abs(matches[0]) <= n // 4
        shifts.add(matches[0])
    assert any(k > 0 for k in shifts) and any(k < 0 for k in shifts)


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_noise_realises_the_snr(colour):
    x = tone(seconds=1.0)
    cfg = NoiseAugment(prob=1.0, colours=[colour], min_snr_db=10.0, max_snr_db=10.0)
    out = add_noise(x, np.random.default_rng(1), cfg)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert snr_db(x, out) == pytest.approx(10.0, abs=0.1)


def test_noise_snr_is_drawn_in_range():
    x = tone(seconds=0.5)
    cfg = NoiseAugment(prob=1.0, min_snr_db=3.0, max_snr_db=30.0)
    snrs = [snr_db(x, add_noise(x, np.random.default_rng(s), cfg)) for s in range(12)]
    assert all(2.9 < s < 30.1 for s in snrs)
    assert max(snrs) - min(snrs) > 5.0


@pytest.mark.parametrize(("colour", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colour_spectral_slope(colour, slope):
    n = 1 << 15
    noise = coloured_noise(n, colour, np.random.default_rng(5))
    assert abs(float(np.mean(noise))) < 1e-3  # DC removed
    assert float(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    assert spectral_slope(noise) == pytest.approx(slope, abs=0.3)
    # The same through add_noise: what it adds has the colour's slope.
    x = tone(seconds=n / SR)
    cfg = NoiseAugment(prob=1.0, colours=[colour], min_snr_db=0.0, max_snr_db=0.0)
    added = add_noise(x, np.random.default_rng(6), cfg).astype(np.float64) - x
    assert spectral_slope(added) == pytest.approx(slope, abs=0.3)


def test_noise_leaves_silence_alone_and_rejects_unknown_colour():
    silent = np.zeros(800, dtype=np.float32)
    assert np.array_equal(add_noise(silent, np.random.default_rng(0), NoiseAugment()), silent)
    with pytest.raises(ValueError, match="white, pink, brown"):
        add_noise(tone(), np.random.default_rng(0), NoiseAugment(colours=["purple"]))


# --------------------------------------------------------------------------- trim silence


def test_trim_silence_removes_the_silent_ends_and_keeps_the_sound():
    rng = np.random.default_rng(0)
    lead, body, tail = int(0.2 * SR), int(0.3 * SR), int(0.3 * SR)
    sound = tone(seconds=0.3)
    x = np.concatenate([np.zeros(lead), sound, np.zeros(tail)]).astype(np.float32)
    x += (1e-5 * rng.standard_normal(x.size)).astype(np.float32)  # -90 dB hiss
    cfg = TrimSilenceAugment(prob=1.0, threshold_db=40.0, frame_seconds=0.02)
    out = trim_silence(x, rng, cfg, SR)
    frame = int(0.02 * SR)
    assert body <= out.size <= body + 2 * frame
    # The whole tone survives: the kept part holds (almost) all of the energy.
    assert np.sum(out.astype(np.float64) ** 2) > 0.999 * np.sum(x.astype(np.float64) ** 2)
    # The silence inside a sound is kept: two bursts with a gap stay one piece.
    gap = np.concatenate([sound, np.zeros(body, np.float32), sound]).astype(np.float32)
    padded = np.concatenate([np.zeros(lead, np.float32), gap, np.zeros(tail, np.float32)])
    assert trim_silence(padded, rng, cfg, SR).size == pytest.approx(gap.size, abs=2 * frame)


def test_trim_silence_never_returns_empty():
    rng = np.random.default_rng(0)  # trimming draws nothing
    cfg = TrimSilenceAugment(prob=1.0)
    silent = np.zeros(1000, dtype=np.float32)
    assert np.array_equal(trim_silence(silent, rng, cfg, SR), silent)
    assert trim_silence(np.zeros(0, np.float32), rng, cfg, SR).size == 0
    click = np.zeros(1000, dtype=np.float32)
    click[500] = 1.0
    assert 1 <= trim_silence(click, rng, cfg, SR).size <= int(0.02 * SR)


# --------------------------------------------------------------------------- scale, stretch, pitch


def test_random_scale_changes_length_and_frequency_by_the_factor():
    x = tone(440.0, seconds=0.5)
    cfg = ScaleAugment(prob=1.0, max_factor=1.25)
    factors = []
    for seed in range(6):
        out = random_scale(x, np.random.default_rng(seed), cfg)
        factor = out.size / x.size
        assert 1 / 1.25 - 1e-3 <= factor <= 1.25 + 1e-3
        assert dominant_hz(out) == pytest.approx(440.0 / factor, rel=0.01)
        factors.append(factor)
    assert min(factors) < 1.0 < max(factors)
    assert scale_wave(x, 1.2).size == pytest.approx(1.2 * x.size, abs=1)


@pytest.mark.parametrize("rate", [0.8, 1.25, 1.5])
def test_stretch_keeps_the_pitch_and_changes_the_duration(rate):
    x = tone(440.0, seconds=1.0)
    out = stretch_wave(x, rate, SR)
    assert out.dtype == np.float32 and out.size == round(x.size / rate)
    assert dominant_hz(out) == pytest.approx(440.0, rel=0.02)
    middle = out[out.size // 4 : 3 * out.size // 4]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=0.2)


def test_stretch_moves_a_burst_in_time():
    # A burst at 0.4-0.6 s: after slowing down by 0.5 it sits at about 0.8-1.2 s.
    x = np.zeros(SR, dtype=np.float32)
    x[int(0.4 * SR) : int(0.6 * SR)] = tone(1000.0, seconds=0.2)
    out = stretch_wave(x, 0.5, SR)
    energy = out.astype(np.float64) ** 2
    centre = float(np.sum(np.arange(out.size) * energy) / np.sum(energy)) / SR
    assert centre == pytest.approx(1.0, abs=0.03)


def test_time_stretch_draws_a_rate_in_range():
    x = tone(440.0, seconds=0.5)
    cfg = TimeStretchAugment(prob=1.0, min_rate=0.8, max_rate=1.25)
    sizes = set()
    for seed in range(5):
        out = time_stretch(x, np.random.default_rng(seed), cfg, SR)
        assert x.size / 1.25 - 1 <= out.size <= x.size / 0.8 + 1
        assert dominant_hz(out) == pytest.approx(440.0, rel=0.03)
        sizes.add(out.size)
    assert len(sizes) > 1


@pytest.mark.parametrize("semitones", [-4.0, 3.0, 7.0])
def test_shift_pitch_moves_frequency_and_keeps_duration(semitones):
    x = tone(440.0, seconds=1.0)
    out = shift_pitch(x, semitones, SR)
    assert out.dtype == np.float32 and out.size == x.size
    assert dominant_hz(out) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.02)


def test_shift_pitch_keeps_a_burst_in_place():
    x = np.zeros(SR, dtype=np.float32)
    x[int(0.3 * SR) : int(0.5 * SR)] = tone(600.0, seconds=0.2)
    out = shift_pitch(x, 5.0, SR)
    energy = out.astype(np.float64) ** 2
    centre = float(np.sum(np.arange(out.size) * energy) / np.sum(energy)) / SR
    assert centre == pytest.approx(0.4, abs=0.03)


def test_pitch_shift_draws_semitones_in_range():
    x = tone(440.0, seconds=0.5)
    cfg = PitchShiftAugment(prob=1.0, max_semitones=2.0)
    ratios = []
    for seed in range(5):
        out = pitch_shift(x, np.random.default_rng(seed), cfg, SR)
        assert out.size == x.size
        ratios.append(dominant_hz(out) / 440.0)
    assert all(2 ** (-2 / 12) - 0.02 < r < 2 ** (2 / 12) + 0.02 for r in ratios)
    assert max(ratios) - min(ratios) > 0.02


# --------------------------------------------------------------------------- place


def test_place_pads_at_a_random_offset():
    x = np.arange(1, 101, dtype=np.float32)
    offsets = set()
    for seed in range(10):
        out = place(x, 300, np.random.default_rng(seed))
        assert out.shape == (300,) and out.dtype == np.float32
        start = int(np.flatnonzero(out)[0])
        assert np.array_equal(out[start : start + 100], x)
        assert np.count_nonzero(out) == 100
        offsets.add(start)
    assert len(offsets) > 3


def test_place_crops_a_random_window():
    x = np.arange(1000, dtype=np.float32)
    starts = set()
    for seed in range(10):
        out = place(x, 300, np.random.default_rng(seed))
        start = int(out[0])
        assert np.array_equal(out, x[start : start + 300])
        starts.add(start)
    assert len(starts) > 3


def test_place_without_rng_is_fit_length():
    short, long = np.ones(100, np.float32), np.arange(1000, dtype=np.float32)
    np.testing.assert_array_equal(place(short, 300), fit_length(short, 300))
    np.testing.assert_array_equal(place(long, 300), fit_length(long, 300))
    assert place(long, 300)[0] == 350  # centre crop


# --------------------------------------------------------------------------- the chain


def test_augment_wave_identity_when_all_off():
    cfg = WaveAugmentSection()
    assert not is_active(cfg)
    for x in (tone(seconds=0.3), tone(seconds=2.0), np.zeros(10, np.float32)):
        out = augment_wave(x, SR, cfg, np.random.default_rng(0), SR)
        np.testing.assert_array_equal(out, fit_length(x, SR))
        assert out.dtype == np.float32


@pytest.mark.parametrize("seconds", [0.0, 0.2, 2.0])
def test_augment_wave_shape_dtype_finite(seconds):
    cfg = all_on()
    for x in (tone(seconds=seconds), np.zeros(int(seconds * SR), np.float32)):
        for seed in range(3):
            out = augment_wave(x, SR, cfg, np.random.default_rng(seed), SR)
            assert out.shape == (SR,) and out.dtype == np.float32
            assert np.all(np.isfinite(out))


def test_augment_wave_is_deterministic_per_seed():
    x = tone(seconds=0.8)
    cfg = all_on()
    a = augment_wave(x, SR, cfg, np.random.default_rng(42), SR)
    b = augment_wave(x, SR, cfg, np.random.default_rng(42), SR)
    c = augment_wave(x, SR, cfg, np.random.default_rng(43), SR)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augment_wave_draw_convention():
    x = tone(seconds=0.8)
    fade_only = WaveAugmentSection(fade=FadeAugment(prob=1.0))
    # The caller's generator advances the same, whatever runs.
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    augment_wave(x, SR, fade_only, r1, SR)
    augment_wave(x, SR, all_on(), r2, SR)
    assert r1.random() == r2.random()
    # A step that runs (drawing its own numbers) does not change another step's draws.
    with_mask = replace(fade_only, time_mask=TimeMaskAugment(prob=1.0, max_fraction=0.0))
    a = augment_wave(x, SR, fade_only, np.random.default_rng(3), SR)
    b = augment_wave(x, SR, with_mask, np.random.default_rng(3), SR)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit_length(x, SR))


def test_augment_wave_respects_probabilities():
    x = tone(seconds=1.0)
    cfg = WaveAugmentSection(time_shift=TimeShiftAugment(prob=0.5))
    changed = [
        not np.array_equal(augment_wave(x, SR, cfg, np.random.default_rng(s), SR), x)
        for s in range(40)
    ]
    assert 8 <= sum(changed) <= 32


def test_each_augmentation_is_reproducible_from_the_generator_state():
    x = tone(seconds=0.5) + 0.01
    calls = [
        lambda r: random_scale(x, r, ScaleAugment()),
        lambda r: pitch_shift(x, r, PitchShiftAugment(), SR),
        lambda r: time_stretch(x, r, TimeStretchAugment(), SR),
        lambda r: fade(x, r, FadeAugment()),
        lambda r: time_mask(x, r, TimeMaskAugment()),
        lambda r: time_shift(x, r, TimeShiftAugment()),
        lambda r: add_noise(x, r, NoiseAugment()),
        lambda r: place(x, 3000, r),
    ]
    for call in calls:
        np.testing.assert_array_equal(
            call(np.random.default_rng(9)), call(np.random.default_rng(9))
        )
        outs = {call(np.random.default_rng(s)).tobytes() for s in range(4)}
        assert len(outs) > 1


def test_is_active():
    assert not is_active(WaveAugmentSection())
    assert is_active(WaveAugmentSection(noise=NoiseAugment(prob=0.1)))
    assert is_active(WaveAugmentSection(random_pad_crop=True))


# --------------------------------------------------------------------------- validation


def test_check_wave_augment_accepts_defaults_and_all_on():
    assert check_wave_augment(WaveAugmentSection()) == []
    assert check_wave_augment(all_on()) == []


def test_check_wave_augment_messages():
    cfg = WaveAugmentSection(
        trim_silence=TrimSilenceAugment(threshold_db=0.0, frame_seconds=-1.0),
        scale=ScaleAugment(max_factor=0.9),
        pitch_shift=PitchShiftAugment(max_semitones=-1.0),
        time_stretch=TimeStretchAugment(min_rate=1.5, max_rate=1.2),
        fade=FadeAugment(prob=1.5, max_fraction=2.0, shapes=["linear", "cosine"]),
        time_mask=TimeMaskAugment(prob=-0.1, fill="mean"),
        time_shift=TimeShiftAugment(max_fraction=float("nan")),
        noise=NoiseAugment(colours=["white", "purple"], min_snr_db=20.0, max_snr_db=10.0),
    )
    text = "\n".join(check_wave_augment(cfg))
    for expected in [
        "wave_augment.trim_silence.threshold_db must be > 0",
        "wave_augment.trim_silence.frame_seconds must be > 0",
        "wave_augment.scale.max_factor must be >= 1",
        "wave_augment.pitch_shift.max_semitones must be >= 0",
        "wave_augment.time_stretch.min_rate must be > 0 and <= max_rate",
        "wave_augment.fade.prob must be in [0, 1]",
        "wave_augment.fade.max_fraction must be in [0, 1]",
        "wave_augment.fade.shapes: unknown shape 'cosine' (valid: linear, logarithmic, "
        "exponential)",
        "wave_augment.time_mask.prob must be in [0, 1]",
        "wave_augment.time_mask.fill: unknown fill 'mean' (valid: noise, zero)",
        "wave_augment.time_shift.max_fraction must be in [0, 1]",
        "wave_augment.noise.colours: unknown colour 'purple' (valid: white, pink, brown)",
        "wave_augment.noise.min_snr_db must be <= max_snr_db",
    ]:
        assert expected in text
    assert "'linear'" not in text and "'white'" not in text
    assert len(check_wave_augment(cfg)) == 13


def test_check_wave_augment_empty_lists_and_zero_rate():
    cfg = WaveAugmentSection(
        fade=FadeAugment(shapes=[]),
        noise=NoiseAugment(colours=[]),
        time_stretch=TimeStretchAugment(min_rate=0.0),
    )
    problems = check_wave_augment(cfg)
    assert any(p.startswith("wave_augment.fade.shapes must list at least one") for p in problems)
    assert any(p.startswith("wave_augment.noise.colours must list at least one") for p in problems)
    assert any(p.startswith("wave_augment.time_stretch.min_rate must be > 0") for p in problems)
