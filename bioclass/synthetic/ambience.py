"""Forest-like background ambience that is not just stationary noise.

The background is coloured noise (power spectrum ~ 1/f^beta, pink to brown) whose loudness drifts
with slow wind gusts, plus faint sporadic events (insect-like tonal buzzes, water drips, twig
clicks) and an optional low mains/generator hum. An ``AmbienceProfile`` holds the character of one
simulated site (colour, level, gustiness, hum); ``AmbienceStream`` renders it continuously in
chunks so arbitrarily long recordings can be written without holding them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Equal-power crossfade between consecutive noise chunks so chunk joins are inaudible.
_CROSSFADE_SECONDS = 0.05
# Grid used once per stream to measure the gust envelope's RMS for level normalisation.
_GUST_CALIBRATION_SECONDS = 3600.0
_GUST_CALIBRATION_RATE_HZ = 20.0
# Events stay below this so they are representable at 8 kHz sampling.
_MAX_EVENT_FREQUENCY_HZ = 3700.0


@dataclass(frozen=True)
class AmbienceProfile:
    """The acoustic character of one simulated recording site.

    Attributes:
        beta: Noise colour exponent: power spectral density ~ 1/f^beta (1 pink, 2 brown).
        rms: Target RMS level of the ambience, linear full scale (1.0 = 0 dBFS).
        low_cut_hz: Corner of the low-frequency roll-off (microphone / wind-shield), in Hz.
        gust_depth: Strength of the slow loudness modulation, in natural-log units.
        gust_rate_hz: Typical rate of gusts, in Hz.
        event_rate_hz: Mean number of faint buzzes/drips/clicks per second.
        event_level: Peak level of those events relative to ``rms``.
        hum_hz: Fundamental of a low hum in Hz, or None for no hum.
        hum_level: RMS of the hum relative to ``rms``.
    """

    beta: float
    rms: float
    low_cut_hz: float
    gust_depth: float
    gust_rate_hz: float
    event_rate_hz: float
    event_level: float
    hum_hz: float | None = None
    hum_level: float = 0.0


def random_profile(
    rng: np.random.Generator,
    level_range_db: tuple[float, float] = (-64.0, -50.0),
    hum_probability: float = 0.3,
) -> AmbienceProfile:
    """Draw the character of a random recording site.

    Args:
        rng: Random generator.
        level_range_db: Range of the ambience RMS level in dBFS.
        hum_probability: Chance that the site has a low mains/generator hum.

    Returns:
        A new profile.
    """
    level_db = rng.uniform(*level_range_db)
    has_hum = rng.random() < hum_probability
    return AmbienceProfile(
        beta=float(rng.uniform(0.8, 2.0)),
        rms=float(10.0 ** (level_db / 20.0)),
        low_cut_hz=float(rng.uniform(40.0, 150.0)),
        gust_depth=float(rng.uniform(0.1, 0.6)),
        gust_rate_hz=float(rng.uniform(0.05, 0.4)),
        event_rate_hz=float(rng.uniform(0.2, 1.0)),
        event_level=float(rng.uniform(1.0, 3.0)),
        hum_hz=float(rng.choice([50.0, 60.0])) if has_hum else None,
        hum_level=float(rng.uniform(0.1, 0.3)) if has_hum else 0.0,
    )


def vary_profile(
    rng: np.random.Generator,
    profile: AmbienceProfile,
    level_spread_db: float = 2.0,
    beta_spread: float = 0.15,
) -> AmbienceProfile:
    """Return a slightly varied copy of ``profile`` (another moment at the same site).

    Args:
        rng: Random generator.
        profile: The site's profile.
        level_spread_db: Maximum level change in dB, either way.
        beta_spread: Maximum change of the noise colour exponent, either way.

    Returns:
        The varied profile.
    """
    level_change = 10.0 ** (rng.uniform(-level_spread_db, level_spread_db) / 20.0)
    return replace(
        profile,
        rms=profile.rms * float(level_change),
        beta=float(np.clip(profile.beta + rng.uniform(-beta_spread, beta_spread), 0.0, 2.5)),
        event_rate_hz=profile.event_rate_hz * float(rng.uniform(0.7, 1.3)),
    )


def _noise_gain(frequencies_hz: np.ndarray, beta: float, low_cut_hz: float) -> np.ndarray:
    """Amplitude response that turns white noise into 1/f^beta noise with a low-frequency cut."""
    safe_hz = np.maximum(frequencies_hz, 1e-6)
    colour = (np.maximum(safe_hz, low_cut_hz) / low_cut_hz) ** (-0.5 * beta)
    # Second-order high-pass magnitude: keeps DC and rumble from dominating brown noise.
    high_pass = 1.0 / np.sqrt(1.0 + (low_cut_hz / safe_hz) ** 4)
    gain = colour * high_pass
    gain[frequencies_hz <= 0] = 0.0
    return gain


def coloured_noise(
    rng: np.random.Generator,
    n_samples: int,
    sample_rate: int,
    beta: float,
    low_cut_hz: float = 50.0,
) -> np.ndarray:
    """Gaussian noise with power spectral density ~ 1/f^beta, shaped with the numpy FFT.

    Args:
        rng: Random generator.
        n_samples: Number of samples.
        sample_rate: Sample rate in Hz.
        beta: Colour exponent (0 white, 1 pink, 2 brown).
        low_cut_hz: Below this frequency the spectrum rolls off instead of growing.

    Returns:
        float64 noise with expected RMS 1.0.
    """
    if n_samples == 0:
        return np.zeros(0)
    frequencies_hz = np.fft.rfftfreq(n_samples, d=1.0 / sample_rate)
    gain = _noise_gain(frequencies_hz, beta, low_cut_hz)
    # Expected output power for unit white noise (interior bins count twice in a real FFT), so
    # the level does not depend on the particular noise draw or chunk length.
    weights = np.full(len(gain), 2.0)
    weights[0] = 1.0
    if n_samples % 2 == 0:
        weights[-1] = 1.0
    expected_power = float(np.sum(weights * gain**2) / n_samples)
    if expected_power <= 0:
        return np.zeros(n_samples)
    spectrum = np.fft.rfft(rng.standard_normal(n_samples)) * gain
    return np.fft.irfft(spectrum, n=n_samples) / np.sqrt(expected_power)


def _insect_buzz(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A faint tonal buzz pulsing at a wingbeat-like rate (unit peak)."""
    duration_seconds = rng.uniform(0.3, 1.5)
    n_samples = int(duration_seconds * sample_rate)
    t = np.arange(n_samples) / sample_rate
    top_hz = min(_MAX_EVENT_FREQUENCY_HZ, 0.45 * sample_rate)
    carrier_hz = rng.uniform(0.85, 0.97) * top_hz
    wobble = 30.0 * np.sin(2.0 * np.pi * rng.uniform(2.0, 6.0) * t)
    phase = 2.0 * np.pi * np.cumsum(carrier_hz + wobble) / sample_rate
    wingbeat = 0.5 + 0.5 * np.sin(2.0 * np.pi * rng.uniform(40.0, 120.0) * t)
    envelope = np.sin(np.pi * t / duration_seconds) ** 0.5
    return np.sin(phase) * wingbeat * envelope


def _drip(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A water drip: a short decaying tone with an upward chirp (unit peak)."""
    n_samples = int(rng.uniform(0.015, 0.04) * sample_rate)
    t = np.arange(n_samples) / sample_rate
    start_hz = rng.uniform(800.0, 2000.0)
    frequency_hz = np.minimum(start_hz * (1.0 + rng.uniform(0.2, 0.6) * t / t[-1]), 3500.0)
    phase = 2.0 * np.pi * np.cumsum(frequency_hz) / sample_rate
    envelope = np.exp(-t / rng.uniform(0.005, 0.01))
    envelope *= np.linspace(1.0, 0.0, n_samples)  # end exactly at zero
    attack = min(max(int(0.001 * sample_rate), 1), n_samples)
    envelope[:attack] *= np.linspace(0.0, 1.0, attack)
    return np.sin(phase) * envelope


def _click(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A twig snap or leaf tick: a few milliseconds of decaying noise (unit peak)."""
    n_samples = max(int(rng.uniform(0.002, 0.005) * sample_rate), 4)
    t = np.arange(n_samples) / sample_rate
    # A three-tap smoother keeps the tick from being pure full-band white noise.
    noise = np.convolve(rng.standard_normal(n_samples), [0.25, 0.5, 0.25], mode="same")
    envelope = np.exp(-t / 0.001) * np.linspace(1.0, 0.0, n_samples)
    return noise * envelope


_EVENT_KINDS = (_insect_buzz, _drip, _click)
_EVENT_PROBABILITIES = (0.3, 0.4, 0.3)


class AmbienceStream:
    """Continuous ambience rendered chunk by chunk.

    Gusts and hum are functions of absolute time and consecutive noise chunks are crossfaded, so
    successive ``read`` calls join seamlessly; the stream never holds more than one chunk.

    Args:
        rng: Random generator; the stream keeps drawing from it on every ``read``.
        sample_rate: Sample rate in Hz.
        profile: The site's character, including its target RMS level.
    """

    def __init__(
        self, rng: np.random.Generator, sample_rate: int, profile: AmbienceProfile
    ) -> None:
        self._rng = rng
        self._sample_rate = sample_rate
        self._profile = profile
        self._position_samples = 0
        self._noise_tail = np.zeros(0)
        self._crossfade_samples = max(int(_CROSSFADE_SECONDS * sample_rate), 1)
        # Three incommensurate slow sinusoids make gusts irregular rather than periodic.
        self._gust_hz = profile.gust_rate_hz * np.array([0.5, 1.0, 1.7]) * rng.uniform(0.8, 1.2, 3)
        self._gust_phase = rng.uniform(0.0, 2.0 * np.pi, 3)
        calibration_t = np.arange(0.0, _GUST_CALIBRATION_SECONDS, 1.0 / _GUST_CALIBRATION_RATE_HZ)
        self._gust_norm = float(np.sqrt(np.mean(self._gust_envelope(calibration_t) ** 2)))
        self._hum_phase = rng.uniform(0.0, 2.0 * np.pi, 3)
        hum_power = profile.hum_level**2 if profile.hum_hz is not None else 0.0
        self._noise_rms = profile.rms / np.sqrt(1.0 + hum_power)

    @property
    def profile(self) -> AmbienceProfile:
        """The site character this stream renders."""
        return self._profile

    def _gust_envelope(self, time_seconds: np.ndarray) -> np.ndarray:
        """Slowly varying positive loudness factor at absolute times ``time_seconds``."""
        slow = np.zeros_like(time_seconds)
        for frequency_hz, phase in zip(self._gust_hz, self._gust_phase, strict=True):
            slow += np.sin(2.0 * np.pi * frequency_hz * time_seconds + phase)
        # Unit-RMS sum (each sinusoid has RMS 1/sqrt(2)), exponentiated to stay positive.
        return np.exp(self._profile.gust_depth * slow * np.sqrt(2.0 / 3.0))

    def _hum(self, time_seconds: np.ndarray) -> np.ndarray:
        """Hum with harmonics at absolute times ``time_seconds`` (zeros without hum)."""
        hum_hz = self._profile.hum_hz
        if hum_hz is None:
            return np.zeros_like(time_seconds)
        amplitudes = np.array([1.0, 0.5, 0.25])
        hum = np.zeros_like(time_seconds)
        for k, (amplitude, phase) in enumerate(zip(amplitudes, self._hum_phase, strict=True)):
            hum += amplitude * np.sin(2.0 * np.pi * (k + 1) * hum_hz * time_seconds + phase)
        unit_rms = np.sqrt(np.sum(amplitudes**2) / 2.0)
        return hum * (self._profile.hum_level * self._profile.rms / unit_rms)

    def _add_events(self, chunk: np.ndarray) -> None:
        """Add faint sporadic events that fit inside ``chunk`` (in place)."""
        duration_seconds = len(chunk) / self._sample_rate
        n_events = self._rng.poisson(self._profile.event_rate_hz * duration_seconds)
        for _ in range(n_events):
            kind = self._rng.choice(len(_EVENT_KINDS), p=_EVENT_PROBABILITIES)
            event = _EVENT_KINDS[kind](self._rng, self._sample_rate)
            if len(event) >= len(chunk):
                continue
            peak = np.max(np.abs(event))
            if peak <= 0:
                continue
            level = self._profile.event_level * self._profile.rms * self._rng.uniform(0.5, 1.5)
            start = int(self._rng.integers(0, len(chunk) - len(event) + 1))
            chunk[start : start + len(event)] += event * (level / peak)

    def read(self, n_samples: int) -> np.ndarray:
        """Render the next ``n_samples`` samples of ambience.

        Args:
            n_samples: Number of samples to render.

        Returns:
            float64 ambience samples.
        """
        if n_samples <= 0:
            return np.zeros(0)
        overlap = self._crossfade_samples
        noise = coloured_noise(
            self._rng,
            n_samples + overlap,
            self._sample_rate,
            self._profile.beta,
            self._profile.low_cut_hz,
        )
        head = noise[:n_samples].copy()
        n_fade = min(len(self._noise_tail), n_samples)
        if n_fade:
            # Independent noises: sin/cos weights keep the variance constant across the join.
            angle = 0.5 * np.pi * (np.arange(n_fade) + 0.5) / n_fade
            fade_out, fade_in = np.cos(angle), np.sin(angle)
            head[:n_fade] = self._noise_tail[:n_fade] * fade_out + head[:n_fade] * fade_in
        self._noise_tail = noise[n_samples:]
        time_seconds = (self._position_samples + np.arange(n_samples)) / self._sample_rate
        gust = self._gust_envelope(time_seconds) / self._gust_norm
        chunk = head * gust * self._noise_rms + self._hum(time_seconds)
        self._add_events(chunk)
        self._position_samples += n_samples
        return chunk


def make_ambience(
    rng: np.random.Generator,
    duration_seconds: float,
    sample_rate: int,
    *,
    rms: float | None = None,
    profile: AmbienceProfile | None = None,
) -> np.ndarray:
    """Render a clip of forest-like ambience normalised to an exact RMS level.

    Args:
        rng: Random generator.
        duration_seconds: Clip length in seconds.
        sample_rate: Sample rate in Hz.
        rms: RMS level of the result (linear full scale); defaults to the profile's level.
        profile: Site character; a random one is drawn from ``rng`` when omitted.

    Returns:
        float32 ambience of ``round(duration_seconds * sample_rate)`` samples.
    """
    if profile is None:
        profile = random_profile(rng)
    target_rms = profile.rms if rms is None else rms
    n_samples = int(round(duration_seconds * sample_rate))
    ambience = AmbienceStream(rng, sample_rate, profile).read(n_samples)
    current_rms = np.sqrt(np.mean(ambience**2)) if n_samples else 0.0
    if current_rms > 0:
        ambience *= target_rms / current_rms
    return ambience.astype(np.float32)
