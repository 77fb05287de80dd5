"""Call generators for four made-up species with clearly different call structures.

Each species is a function ``(rng, sample_rate) -> waveform`` drawing its own per-call variation
(pitch, duration, repetition rate) from the given generator, so the classes are learnable but not
trivially separable. Every call is peak normalised to 1.0, starts and ends at zero (smooth
onsets/offsets, no clicks) and keeps its energy below ``MAX_CALL_FREQUENCY_HZ`` so it survives
8 kHz sampling.

The deterministic synthesisers behind the species (``harmonic_stack``, ``pulse_train``,
``fm_trill``, ``bark_bursts``) take explicit parameters, which the tests use to check that energy
lands where it should.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Calls keep their energy below this so they survive 8 kHz sampling (Nyquist 4 kHz).
MAX_CALL_FREQUENCY_HZ = 3800.0
# No species call is longer than this; long-recording layouts reserve this much per call.
MAX_CALL_SECONDS = 1.5

# harmonic: a harmonic stack with a rising-falling pitch contour.
HARMONIC_F0_RANGE_HZ = (300.0, 560.0)  # starting fundamental; the contour peak stays <= 700 Hz
HARMONIC_RISE_RANGE = (0.10, 0.25)  # contour peak as a fraction above the starting fundamental
HARMONIC_DURATION_RANGE_SECONDS = (0.3, 0.8)
HARMONIC_COUNT_RANGE = (3, 5)  # harmonics including the fundamental
HARMONIC_DECAY_RANGE = (0.35, 0.65)  # amplitude ratio between successive harmonics

# pulses: a train of short band-limited noise pulses at a steady repetition rate.
PULSE_RATE_RANGE_HZ = (8.0, 15.0)
PULSE_COUNT_RANGE = (5, 10)
PULSE_CENTRE_RANGE_HZ = (1300.0, 1700.0)
PULSE_BANDWIDTH_RANGE_HZ = (400.0, 700.0)
PULSE_LENGTH_RANGE_SECONDS = (0.008, 0.020)

# trill: a tone with fast sinusoidal frequency modulation.
TRILL_CARRIER_RANGE_HZ = (2350.0, 2650.0)
TRILL_FM_RATE_RANGE_HZ = (20.0, 30.0)
TRILL_FM_DEPTH_RANGE_HZ = (100.0, 250.0)
TRILL_DRIFT_RANGE_HZ = (-100.0, 100.0)  # carrier change from start to end of the call
TRILL_DURATION_RANGE_SECONDS = (0.4, 1.0)

# bark: 1-3 short noisy bursts with a decaying envelope and one formant-like resonance.
BARK_COUNT_RANGE = (1, 3)
BARK_LENGTH_RANGE_SECONDS = (0.08, 0.15)
BARK_GAP_RANGE_SECONDS = (0.10, 0.25)
BARK_BAND_HZ = (300.0, 2500.0)
BARK_FORMANT_RANGE_HZ = (600.0, 1200.0)
BARK_ROUGHNESS_RATE_RANGE_HZ = (120.0, 250.0)  # glottal-like amplitude flutter inside a bark

# Raised-cosine ramps at both ends of every call so mixing never adds a click.
_EDGE_FADE_SECONDS = 0.005
# Zero padding around a call before FFT filtering so the circular filter does not wrap around.
_FILTER_PAD_SECONDS = 0.05

CallGenerator = Callable[[np.random.Generator, int], np.ndarray]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw one float uniformly from ``bounds``."""
    return float(rng.uniform(bounds[0], bounds[1]))


def _raised_cosine(n_samples: int) -> np.ndarray:
    """Return a ramp rising smoothly from 0 to 1 over ``n_samples`` samples."""
    if n_samples <= 0:
        return np.ones(0)
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_samples) + 0.5) / n_samples)


def _fade_edges(signal: np.ndarray, sample_rate: int, fade_seconds: float) -> np.ndarray:
    """Apply raised-cosine fade-in and fade-out of ``fade_seconds`` (in place and returned)."""
    n_fade = min(int(round(fade_seconds * sample_rate)), len(signal) // 2)
    ramp = _raised_cosine(n_fade)
    signal[:n_fade] *= ramp
    signal[len(signal) - n_fade :] *= ramp[::-1]
    return signal


def _band_mask(
    frequencies_hz: np.ndarray, low_hz: float, high_hz: float, edge_hz: float
) -> np.ndarray:
    """Spectral gain that is 1 inside ``[low_hz, high_hz]`` with raised-cosine skirts.

    Smooth skirts (rather than a brick wall) keep the filter's impulse response short.
    """
    gain = np.zeros_like(frequencies_hz)
    inside = (frequencies_hz >= low_hz) & (frequencies_hz <= high_hz)
    gain[inside] = 1.0
    below = (frequencies_hz < low_hz) & (frequencies_hz > low_hz - edge_hz)
    gain[below] = 0.5 + 0.5 * np.cos(np.pi * (low_hz - frequencies_hz[below]) / edge_hz)
    above = (frequencies_hz > high_hz) & (frequencies_hz < high_hz + edge_hz)
    gain[above] = 0.5 + 0.5 * np.cos(np.pi * (frequencies_hz[above] - high_hz) / edge_hz)
    return gain


def _filtered_noise(
    rng: np.random.Generator,
    n_samples: int,
    sample_rate: int,
    gain_fn: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """White Gaussian noise shaped in the frequency domain by ``gain_fn(frequencies_hz)``.

    Filtering stationary noise circularly is harmless, so no padding is needed here.
    """
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    frequencies_hz = np.fft.rfftfreq(n_samples, d=1.0 / sample_rate)
    shaped = np.fft.irfft(spectrum * gain_fn(frequencies_hz), n=n_samples)
    rms = np.sqrt(np.mean(shaped**2))
    return shaped / rms if rms > 0 else shaped


def _finish(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Low-pass below ``MAX_CALL_FREQUENCY_HZ``, fade the edges and peak normalise to 1.0."""
    # Envelope edges spread energy a little; this guard keeps every call inside the 8 kHz band.
    top_hz = min(MAX_CALL_FREQUENCY_HZ, 0.5 * sample_rate) - 200.0
    pad = int(round(_FILTER_PAD_SECONDS * sample_rate))
    padded = np.concatenate([np.zeros(pad), signal, np.zeros(pad)])
    frequencies_hz = np.fft.rfftfreq(len(padded), d=1.0 / sample_rate)
    gain = _band_mask(frequencies_hz, -1.0, top_hz, 200.0)
    filtered = np.fft.irfft(np.fft.rfft(padded) * gain, n=len(padded))[pad : pad + len(signal)]
    filtered = _fade_edges(filtered, sample_rate, _EDGE_FADE_SECONDS)
    peak = np.max(np.abs(filtered))
    if peak > 0:
        filtered = filtered / peak
    return filtered.astype(np.float32)


def harmonic_stack(
    sample_rate: int,
    *,
    f0_hz: float,
    duration_seconds: float,
    rise: float,
    peak_position: float = 0.5,
    n_harmonics: int = 4,
    harmonic_decay: float = 0.5,
) -> np.ndarray:
    """Synthesise a harmonic stack whose pitch rises then falls.

    Args:
        sample_rate: Output sample rate in Hz.
        f0_hz: Fundamental at the start (and, roughly, the end) of the call, in Hz.
        duration_seconds: Call length in seconds.
        rise: Contour peak as a fraction above ``f0_hz`` (0.2 means the pitch peaks at 1.2 f0).
        peak_position: Where the pitch peaks, as a fraction of the call (0-1).
        n_harmonics: Number of harmonics including the fundamental. Harmonics that would reach
            ``MAX_CALL_FREQUENCY_HZ`` are left out.
        harmonic_decay: Amplitude ratio between successive harmonics (< 1 keeps the
            fundamental strongest).

    Returns:
        float32 waveform, peak 1.0.
    """
    n_samples = max(int(round(duration_seconds * sample_rate)), 2)
    position = np.linspace(0.0, 1.0, n_samples)
    # Warping time by a power moves the peak of sin(pi * u) from the middle to peak_position.
    warp = np.log(0.5) / np.log(np.clip(peak_position, 0.05, 0.95))
    contour_hz = f0_hz * (1.0 + rise * np.sin(np.pi * position**warp))
    phase = 2.0 * np.pi * np.cumsum(contour_hz) / sample_rate
    ceiling_hz = min(MAX_CALL_FREQUENCY_HZ, 0.5 * sample_rate) - 200.0
    signal = np.zeros(n_samples)
    for k in range(1, n_harmonics + 1):
        if k * contour_hz.max() >= ceiling_hz:
            break
        signal += harmonic_decay ** (k - 1) * np.sin(k * phase)
    envelope = np.sin(np.pi * position) ** 0.6
    return _finish(signal * envelope, sample_rate)


def pulse_train(
    rng: np.random.Generator,
    sample_rate: int,
    *,
    rate_hz: float,
    n_pulses: int,
    centre_hz: float = 1500.0,
    bandwidth_hz: float = 600.0,
    pulse_seconds: float = 0.012,
    timing_jitter: float = 0.02,
) -> np.ndarray:
    """Synthesise a train of short band-limited noise pulses.

    Args:
        rng: Source of the pulse noise and of small timing/amplitude jitter.
        sample_rate: Output sample rate in Hz.
        rate_hz: Pulse repetition rate in Hz.
        n_pulses: Number of pulses.
        centre_hz: Centre of the noise band in Hz.
        bandwidth_hz: Width of the noise band in Hz.
        pulse_seconds: Length of one pulse in seconds.
        timing_jitter: Standard deviation of each pulse's onset, as a fraction of the period.

    Returns:
        float32 waveform, peak 1.0.
    """
    period_seconds = 1.0 / rate_hz
    pulse_samples = max(int(round(pulse_seconds * sample_rate)), 4)
    onsets_seconds = np.arange(n_pulses) * period_seconds
    onsets_seconds[1:] += rng.normal(0.0, timing_jitter * period_seconds, n_pulses - 1)
    onsets = np.maximum(np.round(onsets_seconds * sample_rate).astype(int), 0)
    n_samples = int(onsets.max()) + pulse_samples
    low_hz, high_hz = centre_hz - 0.5 * bandwidth_hz, centre_hz + 0.5 * bandwidth_hz
    noise = _filtered_noise(
        rng, n_samples, sample_rate, lambda f: _band_mask(f, low_hz, high_hz, 150.0)
    )
    # Sharp attack, exponential decay: an impulsive, rattle-like pulse.
    t = np.arange(pulse_samples) / sample_rate
    attack = _raised_cosine(max(pulse_samples // 6, 1))
    pulse_envelope = np.exp(-t / (0.3 * pulse_seconds))
    pulse_envelope[: len(attack)] *= attack
    pulse_envelope *= _raised_cosine(pulse_samples)[::-1] ** 0.25  # reach zero at the end
    envelope = np.zeros(n_samples)
    gains = rng.uniform(0.75, 1.0, n_pulses)
    for onset, gain in zip(onsets, gains, strict=True):
        envelope[onset : onset + pulse_samples] += gain * pulse_envelope
    return _finish(noise * envelope, sample_rate)


def fm_trill(
    sample_rate: int,
    *,
    carrier_hz: float,
    fm_rate_hz: float,
    fm_depth_hz: float,
    duration_seconds: float,
    drift_hz: float = 0.0,
    fm_phase: float = 0.0,
) -> np.ndarray:
    """Synthesise a fast sinusoidally frequency-modulated trill.

    Args:
        sample_rate: Output sample rate in Hz.
        carrier_hz: Mean instantaneous frequency in Hz.
        fm_rate_hz: Modulation rate in Hz (notes per second).
        fm_depth_hz: Peak frequency deviation from the carrier in Hz.
        duration_seconds: Call length in seconds.
        drift_hz: Carrier change from the start to the end of the call in Hz.
        fm_phase: Starting phase of the modulation in radians.

    Returns:
        float32 waveform, peak 1.0.
    """
    n_samples = max(int(round(duration_seconds * sample_rate)), 2)
    t = np.arange(n_samples) / sample_rate
    position = t / t[-1]
    modulation = np.sin(2.0 * np.pi * fm_rate_hz * t + fm_phase)
    frequency_hz = carrier_hz + drift_hz * (position - 0.5) + fm_depth_hz * modulation
    phase = 2.0 * np.pi * np.cumsum(frequency_hz) / sample_rate
    # Loudness pulses with each FM cycle so every trill note is audible as a note.
    note_envelope = 0.55 + 0.45 * np.cos(np.pi * fm_rate_hz * t + 0.5 * fm_phase) ** 2
    call_envelope = np.sin(np.pi * position) ** 0.5
    return _finish(np.sin(phase) * note_envelope * call_envelope, sample_rate)


def bark_bursts(
    rng: np.random.Generator,
    sample_rate: int,
    *,
    bark_seconds: Sequence[float],
    gap_seconds: float,
    formant_hz: float = 900.0,
    roughness_hz: float = 180.0,
) -> np.ndarray:
    """Synthesise 1-3 short noisy barks with decaying envelopes.

    Args:
        rng: Source of the bark noise and small per-bark variation.
        sample_rate: Output sample rate in Hz.
        bark_seconds: Length of each bark in seconds; one entry per bark.
        gap_seconds: Silence between barks in seconds.
        formant_hz: Centre of the resonance that colours the noise, in Hz.
        roughness_hz: Rate of the glottal-like amplitude flutter inside a bark, in Hz.

    Returns:
        float32 waveform, peak 1.0.
    """
    low_hz, high_hz = BARK_BAND_HZ

    def gain(frequencies_hz: np.ndarray) -> np.ndarray:
        resonance = np.exp(-0.5 * ((frequencies_hz - formant_hz) / 250.0) ** 2)
        return _band_mask(frequencies_hz, low_hz, high_hz, 150.0) * (1.0 + 3.0 * resonance)

    pieces: list[np.ndarray] = []
    gap = np.zeros(int(round(gap_seconds * sample_rate)))
    for index, length_seconds in enumerate(bark_seconds):
        n_samples = max(int(round(length_seconds * sample_rate)), 8)
        t = np.arange(n_samples) / sample_rate
        envelope = np.exp(-t / (0.3 * length_seconds))
        attack = _raised_cosine(max(int(0.006 * sample_rate), 1))
        envelope[: len(attack)] *= attack
        envelope *= _raised_cosine(n_samples)[::-1] ** 0.3  # decay fully to zero
        flutter = 0.7 + 0.3 * np.cos(2.0 * np.pi * roughness_hz * t)
        noise = _filtered_noise(rng, n_samples, sample_rate, gain)
        # Later barks of a bout tend to be a little weaker.
        level = 1.0 if index == 0 else rng.uniform(0.6, 1.0)
        pieces.append(level * noise * envelope * flutter)
        if index < len(bark_seconds) - 1:
            pieces.append(gap)
    return _finish(np.concatenate(pieces), sample_rate)


def harmonic(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One call of species "harmonic": a 3-5 harmonic stack, 0.3-0.8 s, f0 300-700 Hz."""
    return harmonic_stack(
        sample_rate,
        f0_hz=_uniform(rng, HARMONIC_F0_RANGE_HZ),
        duration_seconds=_uniform(rng, HARMONIC_DURATION_RANGE_SECONDS),
        rise=_uniform(rng, HARMONIC_RISE_RANGE),
        peak_position=float(rng.uniform(0.3, 0.7)),
        n_harmonics=int(rng.integers(HARMONIC_COUNT_RANGE[0], HARMONIC_COUNT_RANGE[1] + 1)),
        harmonic_decay=_uniform(rng, HARMONIC_DECAY_RANGE),
    )


def pulses(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One call of species "pulses": 5-10 noise pulses around 1-2 kHz at 8-15 pulses/s."""
    return pulse_train(
        rng,
        sample_rate,
        rate_hz=_uniform(rng, PULSE_RATE_RANGE_HZ),
        n_pulses=int(rng.integers(PULSE_COUNT_RANGE[0], PULSE_COUNT_RANGE[1] + 1)),
        centre_hz=_uniform(rng, PULSE_CENTRE_RANGE_HZ),
        bandwidth_hz=_uniform(rng, PULSE_BANDWIDTH_RANGE_HZ),
        pulse_seconds=_uniform(rng, PULSE_LENGTH_RANGE_SECONDS),
    )


def trill(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One call of species "trill": a 2-3 kHz tone frequency-modulated at 20-30 Hz."""
    return fm_trill(
        sample_rate,
        carrier_hz=_uniform(rng, TRILL_CARRIER_RANGE_HZ),
        fm_rate_hz=_uniform(rng, TRILL_FM_RATE_RANGE_HZ),
        fm_depth_hz=_uniform(rng, TRILL_FM_DEPTH_RANGE_HZ),
        duration_seconds=_uniform(rng, TRILL_DURATION_RANGE_SECONDS),
        drift_hz=_uniform(rng, TRILL_DRIFT_RANGE_HZ),
        fm_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
    )


def bark(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One call of species "bark": 1-3 noisy 80-150 ms barks in 300-2500 Hz."""
    n_barks = int(rng.integers(BARK_COUNT_RANGE[0], BARK_COUNT_RANGE[1] + 1))
    return bark_bursts(
        rng,
        sample_rate,
        bark_seconds=[_uniform(rng, BARK_LENGTH_RANGE_SECONDS) for _ in range(n_barks)],
        gap_seconds=_uniform(rng, BARK_GAP_RANGE_SECONDS),
        formant_hz=_uniform(rng, BARK_FORMANT_RANGE_HZ),
        roughness_hz=_uniform(rng, BARK_ROUGHNESS_RATE_RANGE_HZ),
    )


SPECIES: dict[str, CallGenerator] = {
    "harmonic": harmonic,
    "pulses": pulses,
    "trill": trill,
    "bark": bark,
}
"""Species name -> call generator ``(rng, sample_rate) -> float32 waveform`` (peak 1.0)."""
