"""Waveform augmentations of CLAR (Al-Tahan & Mohsenzadeh, section 3.4) and SoundCLR
(Nasiri & Hu, section III-A), applied to training clips before the spectrogram front end.

Every waveform here is a 1-D numpy array of float32 samples (mono, nominally in [-1, 1]);
every function returns a new float32 array and leaves its input untouched. Randomness comes
only from the `np.random.Generator` passed in, so the same generator state gives the same
output.

The pieces:

    trim_silence   SoundCLR: drop silent frames at the start and the end
    random_scale   SoundCLR: resample by a factor in [1/max, max] (pitch and duration change)
    pitch_shift    CLAR: phase-vocoder stretch + resampling (duration kept)
    time_stretch   CLAR: phase vocoder (pitch kept)
    place          SoundCLR: random padding / random cropping to the clip length
    fade           CLAR: linear / logarithmic / exponential fade in and out
    time_mask      CLAR: one segment replaced by noise or zeros
    time_shift     CLAR: roll with wrap-around
    add_noise      CLAR: white / pink / brown noise at a random SNR

`augment_wave` chains them in that order for one clip, each with its own probability.
`bioclass.recipe.validate.check_wave_augment` validates a `WaveAugmentSection`; the shape,
fill and colour names come from `bioclass.recipe.vocab`.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from bioclass.audio import fit_length
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
from bioclass.recipe.vocab import FADE_SHAPES, NOISE_COLOURS, TIME_MASK_FILLS, WAVE_STEPS

# One child seed per step plus one for `place`, drawn on every call (see `augment_wave`).
_N_SEEDS = len(WAVE_STEPS) + 1
_SEED_HIGH = np.iinfo(np.int64).max


# --------------------------------------------------------------------------- helpers


def _as_wave(wave: np.ndarray) -> np.ndarray:
    """`wave` as a 1-D float32 array (no copy when it already is one; raises on other shapes)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {wave.shape}")
    return wave


def _max_length(fraction: float, n: int) -> int:
    """The largest whole number of samples within `fraction` of `n` (clamped to [0, n])."""
    return int(min(max(math.floor(fraction * n), 0), n))


def _resample(wave: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """Band-limited resampling with soxr; only the ratio of the rates matters.

    Args:
        wave: (n,) float32.
        in_rate: rate the samples are at (any unit).
        out_rate: rate wanted (same unit).

    Returns:
        (about n * out_rate / in_rate,) float32.
    """
    if wave.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    out = soxr.resample(np.ascontiguousarray(wave), in_rate, out_rate, quality="HQ")
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- deterministic cores


def scale_wave(wave: np.ndarray, factor: float) -> np.ndarray:
    """Resample so that the clip lasts `factor` times as long at the same sample rate.

    Played back at the original rate, every frequency is divided by `factor` (SoundCLR's random
    scaling: a joint pitch and tempo change). soxr low-passes when shrinking, so no aliasing.

    Args:
        wave: (n,) float32 waveform.
        factor: length ratio, > 0.

    Returns:
        (round(n * factor),) float32 (soxr's rounding; within a sample of it).
    """
    wave = _as_wave(wave)
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    if factor == 1.0:
        return wave.copy()
    return _resample(wave, 1.0, factor)


def vocoder_fft_size(sample_rate: int) -> int:
    """STFT size of the phase vocoder: the power of two nearest to 64 ms, in [64, 4096] samples.

    64 ms resolves harmonics of most calls while keeping transients tolerable; it is 512 at
    8 kHz, 1024 at 16 kHz and 2048 at 32 kHz.
    """
    exponent = round(math.log2(max(0.064 * sample_rate, 1.0)))
    return int(2 ** min(max(exponent, 6), 12))


def stretch_wave(wave: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """Change the duration by 1/`rate` while keeping the pitch (phase vocoder).

    STFT with a periodic Hann window (hop = n_fft / 4, clip centred with n_fft/2 zeros each
    side); output frames read the analysis frames at fractional positions 0, rate, 2*rate, ...
    with linearly interpolated magnitudes, and their phases are accumulated from each bin's
    instantaneous frequency (the expected advance plus the wrapped phase deviation between the
    two neighbouring analysis frames). The inverse is a windowed overlap-add divided by the sum
    of squared windows.

    Args:
        wave: (n,) float32 waveform.
        rate: speed factor, > 0; > 1 is faster (shorter), < 1 slower (longer).
        sample_rate: Hz; only sets the STFT size (`vocoder_fft_size`).

    Returns:
        (round(n / rate),) float32.
    """
    wave = _as_wave(wave)
    if rate <= 0:
        raise ValueError(f"stretch rate must be > 0, got {rate}")
    n = wave.shape[0]
    n_out = int(round(n / rate))
    if rate == 1.0:
        return wave.copy()
    if n == 0 or n_out == 0:
        return np.zeros(n_out, dtype=np.float32)

    n_fft = vocoder_fft_size(sample_rate)
    hop = n_fft // 4
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann: overlap-adds to a constant

    # Analysis: frames every `hop` samples over the centred, zero-padded clip.
    pad = n_fft // 2
    n_frames = 1 + math.ceil(n / hop)
    padded = np.zeros(n_fft + hop * (n_frames - 1), dtype=np.float64)
    padded[pad : pad + n] = wave
    starts = hop * np.arange(n_frames)
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]] * window
    spec = np.fft.rfft(frames, axis=1)  # (n_frames, n_fft/2 + 1)
    # One silent frame past the end so that frame i + 1 always exists.
    spec = np.concatenate([spec, np.zeros((1, spec.shape[1]), dtype=spec.dtype)])

    # Resynthesis positions (in analysis frames) and their neighbours.
    positions = np.arange(0.0, n_frames, rate)
    left = np.floor(positions).astype(np.int64)
    alpha = (positions - left)[:, None]
    magnitude = np.abs(spec)
    phase = np.angle(spec)
    out_mag = (1.0 - alpha) * magnitude[left] + alpha * magnitude[left + 1]

    # Phase advance per hop expected for each bin centre, plus the measured deviation (wrapped
    # to [-pi, pi]) gives the instantaneous frequency; accumulating it keeps partials coherent.
    expected = 2.0 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    deviation = phase[left + 1] - phase[left] - expected
    deviation -= 2.0 * np.pi * np.round(deviation / (2.0 * np.pi))
    advance = expected + deviation
    out_phase = phase[0] + np.concatenate(
        [np.zeros((1, spec.shape[1])), np.cumsum(advance[:-1], axis=0)]
    )

    # Synthesis: windowed overlap-add, normalised by the summed squared window.
    out_frames = np.fft.irfft(out_mag * np.exp(1j * out_phase), n=n_fft, axis=1) * window
    # hop = n_fft / 4, so each frame spans 4 hop-sized blocks: add block j of frame k at k + j.
    n_out_frames, blocks_per_frame = out_frames.shape[0], n_fft // hop
    blocks = out_frames.reshape(n_out_frames, blocks_per_frame, hop)
    window_blocks = (window**2).reshape(blocks_per_frame, hop)
    out = np.zeros((n_out_frames + blocks_per_frame - 1, hop))
    window_sum = np.zeros_like(out)
    for j in range(blocks_per_frame):
        out[j : j + n_out_frames] += blocks[:, j]
        window_sum[j : j + n_out_frames] += window_blocks[j]
    out, window_sum = out.reshape(-1), window_sum.reshape(-1)
    # Only the padded edges have a near-zero window sum; leave them unscaled.
    nonzero = window_sum > 1e-8
    out[nonzero] /= window_sum[nonzero]
    return fit_length(out[pad:].astype(np.float32), n_out, offset=0)


def shift_pitch(wave: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Move every frequency by 2**(semitones / 12), keeping the duration.

    The clip is first made 2**(semitones / 12) times longer with the phase vocoder (stretch rate
    2**(-semitones / 12), pitch kept), then resampled with soxr back to its original number of
    samples, which multiplies every frequency by that ratio.

    Args:
        wave: (n,) float32 waveform.
        semitones: shift; > 0 raises the pitch.
        sample_rate: Hz (sets the vocoder's STFT size).

    Returns:
        (n,) float32.
    """
    wave = _as_wave(wave)
    n = wave.shape[0]
    if semitones == 0.0 or n == 0:
        return wave.copy()
    ratio = 2.0 ** (semitones / 12.0)
    stretched = stretch_wave(wave, 1.0 / ratio, sample_rate)
    # Resample the stretched clip to exactly n samples' worth (soxr may round by one).
    shifted = _resample(stretched, float(stretched.shape[0]), float(n))
    return np.array(fit_length(shifted, n, offset=0), dtype=np.float32)


def fade_curve(shape: str, length: int) -> np.ndarray:
    """Fade-in gains g(t) sampled at t = k / length, k = 0 .. length - 1 (so g starts at 0).

    With t in [0, 1] going from the start to the end of the fade (g(0) = 0, g(1) = 1):

        linear       g(t) = t
        logarithmic  g(t) = log10(1 + 9 t)        rises fast, then levels off (concave)
        exponential  g(t) = (10**t - 1) / 9       starts slowly, then rises fast (convex)

    The logarithmic and exponential curves are each other's inverse. A fade-out uses the same
    gains reversed, so the last sample is 0.

    Args:
        shape: one of FADE_SHAPES.
        length: number of samples, >= 0.

    Returns:
        (length,) float32 gains in [0, 1).
    """
    t = np.arange(length, dtype=np.float64) / max(length, 1)
    if shape == "linear":
        gain = t
    elif shape == "logarithmic":
        gain = np.log10(1.0 + 9.0 * t)
    elif shape == "exponential":
        gain = (10.0**t - 1.0) / 9.0
    else:
        raise ValueError(f"unknown fade shape {shape!r} (valid: {', '.join(FADE_SHAPES)})")
    return gain.astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Gaussian noise whose power spectrum falls as 1/f**beta, unit mean power.

    White Gaussian noise is shaped in the rfft domain: bin k (k >= 1) is scaled by
    k**(-beta / 2), the DC bin is zeroed. beta is 0 for white, 1 for pink, 2 for brown.

    Args:
        n: number of samples.
        colour: one of NOISE_COLOURS.
        rng: source of the white noise (n standard normal draws).

    Returns:
        (n,) float32 with mean power 1 (all zeros when n < 2: nothing but DC to shape).
    """
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if colour not in exponents:
        raise ValueError(f"unknown noise colour {colour!r} (valid: {', '.join(NOISE_COLOURS)})")
    white = rng.standard_normal(n)
    if n < 2:
        return np.zeros(n, dtype=np.float32)
    spectrum = np.fft.rfft(white)
    k = np.arange(spectrum.shape[0], dtype=np.float64)
    k[0] = 1.0  # avoid 0 ** negative; the DC bin is zeroed just below
    spectrum *= k ** (-exponents[colour] / 2.0)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=n)
    power = float(np.mean(noise**2))
    if power <= 0.0:
        return np.zeros(n, dtype=np.float32)
    return (noise / math.sqrt(power)).astype(np.float32)


# --------------------------------------------------------------------------- augmentations


def trim_silence(
    wave: np.ndarray, rng: np.random.Generator, cfg: TrimSilenceAugment, sample_rate: int
) -> np.ndarray:
    """Drop leading and trailing frames more than `cfg.threshold_db` below the loudest frame.

    The clip is cut into consecutive frames of `cfg.frame_seconds` (the last one may be
    shorter); a frame's level is 20 log10 of its RMS. Everything from the first to the last
    frame within `threshold_db` of the loudest is kept, silence in between included.

    Args:
        wave: (n,) float32 waveform.
        rng: unused (trimming is deterministic); kept so all augmentations look alike.
        cfg: the threshold (dB, > 0) and frame length (seconds).
        sample_rate: Hz.

    Returns:
        (m,) float32, 1 <= m <= n; an all-silent or empty clip comes back unchanged.
    """
    del rng
    wave = _as_wave(wave)
    n = wave.shape[0]
    frame = max(1, int(round(cfg.frame_seconds * sample_rate)))
    n_frames = math.ceil(n / frame)
    if n_frames == 0:
        return wave.copy()
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[:n] = wave
    energy = np.sum(padded.reshape(n_frames, frame) ** 2, axis=1)
    counts = np.full(n_frames, frame, dtype=np.float64)
    counts[-1] = n - frame * (n_frames - 1)  # the last frame's true length
    rms = np.sqrt(energy / counts)
    peak = float(rms.max())
    if peak <= 0.0:
        return wave.copy()
    loud = np.flatnonzero(rms >= peak * 10.0 ** (-cfg.threshold_db / 20.0))
    start, stop = int(loud[0]) * frame, min((int(loud[-1]) + 1) * frame, n)
    return wave[start:stop].copy()


def random_scale(wave: np.ndarray, rng: np.random.Generator, cfg: ScaleAugment) -> np.ndarray:
    """SoundCLR random scaling: `scale_wave` by a factor in [1/max_factor, max_factor].

    The factor is log-uniform, max_factor ** U(-1, 1), as in the BC-learning code SoundCLR
    borrows it from: stretching and shrinking are equally likely.

    Args:
        wave: (n,) float32 waveform.
        rng: draws one uniform.
        cfg: max_factor >= 1.

    Returns:
        (about n * factor,) float32; frequencies divided by the factor.
    """
    factor = float(cfg.max_factor) ** rng.uniform(-1.0, 1.0)
    return scale_wave(wave, factor)


def pitch_shift(
    wave: np.ndarray, rng: np.random.Generator, cfg: PitchShiftAugment, sample_rate: int
) -> np.ndarray:
    """CLAR pitch shift by semitones uniform in [-max_semitones, max_semitones] (`shift_pitch`).

    Args:
        wave: (n,) float32 waveform.
        rng: draws one uniform.
        cfg: max_semitones >= 0.
        sample_rate: Hz.

    Returns:
        (n,) float32.
    """
    semitones = rng.uniform(-cfg.max_semitones, cfg.max_semitones)
    return shift_pitch(wave, float(semitones), sample_rate)


def time_stretch(
    wave: np.ndarray, rng: np.random.Generator, cfg: TimeStretchAugment, sample_rate: int
) -> np.ndarray:
    """CLAR time stretch by a rate uniform in [min_rate, max_rate] (`stretch_wave`).

    Args:
        wave: (n,) float32 waveform.
        rng: draws one uniform.
        cfg: 0 < min_rate <= max_rate; rate > 1 is faster (shorter).
        sample_rate: Hz.

    Returns:
        (round(n / rate),) float32, pitch kept.
    """
    rate = rng.uniform(cfg.min_rate, cfg.max_rate)
    return stretch_wave(wave, float(rate), sample_rate)


def place(wave: np.ndarray, n_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Pad or crop to exactly `n_samples`.

    With `rng` (SoundCLR random padding / cropping): a shorter clip is put at a random offset
    in zeros, a longer one gives a random window; offsets are uniform over all that fit.
    Without: zero-pad at the end or crop the centre (`bioclass.audio.fit_length`).

    Args:
        wave: (n,) float32 waveform.
        n_samples: wanted length, >= 0.
        rng: draws one integer when n != n_samples; None for the fixed placement.

    Returns:
        (n_samples,) float32.
    """
    wave = _as_wave(wave)
    n = wave.shape[0]
    if rng is None or n == n_samples:
        return np.array(fit_length(wave, n_samples), dtype=np.float32)
    if n < n_samples:
        offset = int(rng.integers(0, n_samples - n + 1))
        out = np.zeros(n_samples, dtype=np.float32)
        out[offset : offset + n] = wave
        return out
    offset = int(rng.integers(0, n - n_samples + 1))
    return wave[offset : offset + n_samples].copy()


def fade(wave: np.ndarray, rng: np.random.Generator, cfg: FadeAugment) -> np.ndarray:
    """CLAR fade in and out with one shape drawn uniformly from `cfg.shapes` (`fade_curve`).

    The fade-in covers the first L_in samples and the fade-out the last L_out, each drawn
    uniformly in [0, floor(max_fraction * n)]; where they overlap the gains multiply.

    Args:
        wave: (n,) float32 waveform.
        rng: draws the shape, then L_in, then L_out.
        cfg: shapes (names in FADE_SHAPES), max_fraction in [0, 1].

    Returns:
        (n,) float32.

    Raises:
        ValueError: no shape, or an unknown one.
    """
    wave = _as_wave(wave)
    shapes = list(cfg.shapes)
    unknown = [s for s in shapes if s not in FADE_SHAPES]
    if not shapes or unknown:
        raise ValueError(f"fade shapes must be among {', '.join(FADE_SHAPES)}, got {shapes!r}")
    n = wave.shape[0]
    shape = shapes[int(rng.integers(len(shapes)))]
    longest = _max_length(cfg.max_fraction, n)
    n_in = int(rng.integers(0, longest + 1))
    n_out = int(rng.integers(0, longest + 1))
    out = wave.copy()
    out[:n_in] *= fade_curve(shape, n_in)
    if n_out:
        out[n - n_out :] *= fade_curve(shape, n_out)[::-1]
    return out


def time_mask(wave: np.ndarray, rng: np.random.Generator, cfg: TimeMaskAugment) -> np.ndarray:
    """CLAR time masking: one segment replaced by Gaussian noise or zeros.

    The length is uniform in [0, floor(max_fraction * n)] and the start uniform over all
    positions where it fits. `fill: noise` uses standard deviation = the clip's RMS (measured
    before masking), `fill: zero` writes 0.

    Args:
        wave: (n,) float32 waveform.
        rng: draws the length, the start, then (noise fill) the noise.
        cfg: max_fraction in [0, 1], fill in TIME_MASK_FILLS.

    Returns:
        (n,) float32.

    Raises:
        ValueError: unknown fill.
    """
    if cfg.fill not in TIME_MASK_FILLS:
        raise ValueError(
            f"unknown time mask fill {cfg.fill!r} (valid: {', '.join(TIME_MASK_FILLS)})"
        )
    wave = _as_wave(wave)
    n = wave.shape[0]
    length = int(rng.integers(0, _max_length(cfg.max_fraction, n) + 1))
    start = int(rng.integers(0, n - length + 1))
    out = wave.copy()
    if cfg.fill == "noise":
        rms = math.sqrt(float(np.mean(np.square(wave, dtype=np.float64)))) if n else 0.0
        out[start : start + length] = rms * rng.standard_normal(length)
    else:
        out[start : start + length] = 0.0
    return out


def time_shift(wave: np.ndarray, rng: np.random.Generator, cfg: TimeShiftAugment) -> np.ndarray:
    """CLAR time shift: `np.roll` by an integer uniform in [-m, m], m = floor(max_fraction * n).

    Samples pushed past one end come back at the other (roll-over).

    Args:
        wave: (n,) float32 waveform.
        rng: draws one integer.
        cfg: max_fraction in [0, 1].

    Returns:
        (n,) float32.
    """
    wave = _as_wave(wave)
    most = _max_length(cfg.max_fraction, wave.shape[0])
    shift = int(rng.integers(-most, most + 1))
    return np.roll(wave, shift)


def add_noise(wave: np.ndarray, rng: np.random.Generator, cfg: NoiseAugment) -> np.ndarray:
    """CLAR noise injection: `coloured_noise` of a random colour at a random SNR.

    The colour is uniform among `cfg.colours`, the SNR uniform in [min_snr_db, max_snr_db];
    the noise is scaled so that 10 log10(mean(wave**2) / mean(noise**2)) equals that SNR.
    A silent clip (zero power) is returned unchanged: there is no level to be relative to.

    Args:
        wave: (n,) float32 waveform.
        rng: draws the colour, the SNR, then n normal samples (always, silent clip or not).
        cfg: colours (names in NOISE_COLOURS), min_snr_db <= max_snr_db.

    Returns:
        (n,) float32.

    Raises:
        ValueError: no colour, or an unknown one.
    """
    wave = _as_wave(wave)
    colours = list(cfg.colours)
    unknown = [c for c in colours if c not in NOISE_COLOURS]
    if not colours or unknown:
        raise ValueError(f"noise colours must be among {', '.join(NOISE_COLOURS)}, got {colours!r}")
    colour = colours[int(rng.integers(len(colours)))]
    snr_db = float(rng.uniform(cfg.min_snr_db, cfg.max_snr_db))
    noise = coloured_noise(wave.shape[0], colour, rng)
    signal_power = float(np.mean(np.square(wave, dtype=np.float64))) if wave.size else 0.0
    if signal_power <= 0.0:
        return wave.copy()
    gain = math.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
    return (wave + gain * noise).astype(np.float32)


# --------------------------------------------------------------------------- the chain


def is_active(cfg: WaveAugmentSection) -> bool:
    """Whether `augment_wave` can differ from `fit_length` (any prob > 0 or random_pad_crop)."""
    return bool(cfg.random_pad_crop) or any(getattr(cfg, step).prob > 0 for step in WAVE_STEPS)


def augment_wave(
    wave: np.ndarray,
    n_samples: int,
    cfg: WaveAugmentSection,
    rng: np.random.Generator,
    sample_rate: int,
) -> np.ndarray:
    """Augment one training clip and fit it to `n_samples`.

    Order: trim_silence, random_scale, pitch_shift, time_stretch, `place` (random offset when
    `cfg.random_pad_crop`, else end-pad / centre-crop), fade, time_mask, time_shift, add_noise;
    each step runs when its gate draw u < its prob.

    Random draws: every call takes exactly the same numbers from `rng` whatever the config and
    the clip: first 8 uniforms (`rng.random(8)`, the gates, in the order above), then 9 child
    seeds (`rng.integers(0, 2**63 - 1, size=9)`, one per step with `place` between
    time_stretch and fade). Each step that runs draws its parameters from its own
    `np.random.default_rng(seed)`. So a seed fixes the output, the caller's generator advances
    identically on every call, and switching one augmentation on or off does not change the
    parameters the others draw.

    Args:
        wave: (n,) float32 waveform, any length (also shorter than n_samples, or empty).
        n_samples: output length.
        cfg: the recipe's wave_augment section.
        rng: the generator everything is drawn from.
        sample_rate: Hz.

    Returns:
        (n_samples,) float32. With every prob 0 and random_pad_crop false it equals
        `fit_length(wave, n_samples)`.
    """
    wave = _as_wave(wave)
    gates = rng.random(len(WAVE_STEPS))
    seeds = rng.integers(0, _SEED_HIGH, size=_N_SEEDS)
    run = {step: bool(gates[i] < getattr(cfg, step).prob) for i, step in enumerate(WAVE_STEPS)}
    child = {step: seeds[i] for i, step in enumerate(WAVE_STEPS)}
    place_seed = seeds[len(WAVE_STEPS)]

    def gen(step: str) -> np.random.Generator:
        return np.random.default_rng(int(child[step]))

    if run["trim_silence"]:
        wave = trim_silence(wave, gen("trim_silence"), cfg.trim_silence, sample_rate)
    if run["scale"]:
        wave = random_scale(wave, gen("scale"), cfg.scale)
    if run["pitch_shift"]:
        wave = pitch_shift(wave, gen("pitch_shift"), cfg.pitch_shift, sample_rate)
    if run["time_stretch"]:
        wave = time_stretch(wave, gen("time_stretch"), cfg.time_stretch, sample_rate)
    place_rng = np.random.default_rng(int(place_seed)) if cfg.random_pad_crop else None
    wave = place(wave, n_samples, place_rng)
    if run["fade"]:
        wave = fade(wave, gen("fade"), cfg.fade)
    if run["time_mask"]:
        wave = time_mask(wave, gen("time_mask"), cfg.time_mask)
    if run["time_shift"]:
        wave = time_shift(wave, gen("time_shift"), cfg.time_shift)
    if run["noise"]:
        wave = add_noise(wave, gen("noise"), cfg.noise)
    return np.ascontiguousarray(wave, dtype=np.float32)
