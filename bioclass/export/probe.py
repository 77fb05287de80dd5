"""The test signal an export is checked on: a few windows that look like field audio (a chirp in
noise, noise alone, a tone burst), so every part of the front end's dynamic range is exercised."""

from __future__ import annotations

import numpy as np

# Fixed, so an export's reported difference is reproducible.
_SEED = 20240501


def probe_waves(sample_rate: int, n_samples: int) -> np.ndarray:
    """(3, n_samples) float32 windows at `sample_rate`: a rising chirp from 5 % to 45 % of the
    rate in faint noise, noise alone, and a quiet tone burst at an eighth of the rate."""
    rng = np.random.default_rng(_SEED)
    t = np.arange(n_samples) / sample_rate
    seconds = n_samples / sample_rate
    f0, f1 = 0.05 * sample_rate, 0.45 * sample_rate
    # Linear chirp: the phase is the integral of a frequency rising from f0 to f1.
    chirp = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    noise = rng.standard_normal((3, n_samples))
    burst = np.sin(2 * np.pi * sample_rate / 8 * t) * np.exp(-(((t - seconds / 2) / 0.1) ** 2))
    waves = np.stack([chirp + 0.01 * noise[0], 0.2 * noise[1], 0.05 * burst + 1e-3 * noise[2]])
    return waves.astype(np.float32)
