"""Log-mel front end that lives inside the model: waveform -> normalised log-mel spectrogram.

Keeping feature extraction in the model means a checkpoint fixes its own features, and the
same code path runs on CPU and GPU, in training and when scanning long recordings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from bioclass.core.errors import BioclassError

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_HZ_PER_MEL = 200.0 / 3.0
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _HZ_PER_MEL
_LOG_STEP = math.log(6.4) / 27.0

# Floor of the power spectrum before taking dB, as in PANNs (amin=1e-10 -> -100 dB).
_AMIN = 1e-10


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of the log-mel front end.

    Attributes:
        sample_rate: Sample rate (Hz) the model expects its input at.
        n_fft: FFT size and Hann window length, in samples.
        hop_length: Samples between successive frames.
        n_mels: Number of mel bands.
        f_min: Lowest mel band edge (Hz).
        f_max: Highest mel band edge (Hz); ``None`` means ``sample_rate / 2``.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise BioclassError(f"frontend {name} must be a positive integer, got {value!r}")
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.f_min < self.fmax_hz <= nyquist:
            raise BioclassError(
                f"frontend needs 0 <= f_min < f_max <= sample_rate/2 ({nyquist:g} Hz), "
                f"got f_min={self.f_min!r}, f_max={self.f_max!r}"
            )

    @property
    def fmax_hz(self) -> float:
        """Upper mel edge with ``None`` resolved to the Nyquist frequency."""
        return self.sample_rate / 2 if self.f_max is None else float(self.f_max)

    def n_frames(self, n_samples: int) -> int:
        """Number of frames the (centred) STFT yields for ``n_samples`` samples."""
        return n_samples // self.hop_length + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (e.g. for checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BioclassError(
                f"unknown frontend setting(s): {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
        return cls(**d)


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Hz -> Slaney mel (float64)."""
    freq = np.asarray(freq, dtype=np.float64)
    linear = freq / _HZ_PER_MEL
    # np.maximum keeps log() away from 0 Hz in the branch np.where discards.
    log = _LOG_START_MEL + np.log(np.maximum(freq, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(freq >= _LOG_START_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Slaney mel -> Hz (float64)."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _HZ_PER_MEL
    log = _LOG_START_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _LOG_START_MEL) - _LOG_START_MEL))
    return np.where(mel >= _LOG_START_MEL, log, linear)


def mel_frequencies(n: int, f_min: float, f_max: float) -> np.ndarray:
    """``n`` frequencies (Hz) equally spaced on the Slaney mel scale from f_min to f_max."""
    return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n))


def mel_band_centres(config: FrontendConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel band, shape (n_mels,)."""
    return mel_frequencies(config.n_mels + 2, config.f_min, config.fmax_hz)[1:-1]


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None
) -> torch.Tensor:
    """Triangular mel filters on the Slaney scale with Slaney (unit-area) normalisation.

    Equals ``librosa.filters.mel(..., htk=False, norm="slaney").T``.

    Args:
        sample_rate: Sample rate in Hz.
        n_fft: FFT size; the filters cover its ``n_fft // 2 + 1`` bins.
        n_mels: Number of mel bands.
        f_min: Lowest band edge in Hz.
        f_max: Highest band edge in Hz; ``None`` means ``sample_rate / 2``.

    Returns:
        Float32 tensor of shape (n_fft // 2 + 1, n_mels), so ``power @ fb`` maps
        (..., n_freqs) to (..., n_mels).
    """
    if f_max is None:
        f_max = sample_rate / 2
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)  # (n_freqs,)
    edges = mel_frequencies(n_mels + 2, f_min, f_max)  # (n_mels + 2,)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1)
    rising = (fft_hz - lower) / (centre - lower)  # (n_mels, n_freqs)
    falling = (upper - fft_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: scale each triangle to unit area, so wide high bands
    # do not dominate just because they span more FFT bins.
    weights *= 2.0 / (upper - lower)
    return torch.from_numpy(np.ascontiguousarray(weights.T, dtype=np.float32))


class LogMel(nn.Module):
    """Waveform -> log-mel spectrogram (dB), followed by PANNs' per-mel-bin BatchNorm (bn0).

    Args:
        config: Front-end settings; defaults to ``FrontendConfig()``.
    """

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else FrontendConfig()
        cfg = self.config
        # Non-persistent: both are recomputed from the config, so state_dicts hold only weights.
        # Made on the CPU even when the model is built on the meta device
        # (`create_model_with_weights`): no checkpoint holds them, so they must have values.
        self.register_buffer(
            "window", torch.hann_window(cfg.n_fft, periodic=True, device="cpu"), persistent=False
        )
        self.register_buffer(
            "mel_fb",
            mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max),
            persistent=False,
        )
        self.bn0 = nn.BatchNorm2d(cfg.n_mels)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel power spectrogram in dB, before bn0.

        Args:
            wave: Waveform, shape (B, T), at ``config.sample_rate``.

        Returns:
            Float32 (float64 for float64 input) tensor of shape (B, 1, T // hop + 1, n_mels).
        """
        cfg = self.config
        if wave.ndim != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= cfg.n_fft // 2:
            # Reflect padding needs more than n_fft // 2 samples.
            raise BioclassError(
                f"audio too short for the front end: {wave.shape[-1]} samples, "
                f"need more than {cfg.n_fft // 2}"
            )
        # Half-precision STFT and log are too inaccurate: compute in >= float32 even under autocast.
        dtype = torch.float64 if wave.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=wave.device.type, enabled=False):
            x = wave.to(dtype)
            spec = torch.stft(
                x,
                n_fft=cfg.n_fft,
                hop_length=cfg.hop_length,
                win_length=cfg.n_fft,
                window=self.window.to(dtype),
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )  # (B, T) -> (B, n_freqs, frames)
            power = spec.real.square() + spec.imag.square()  # |X|^2 without a sqrt round trip
            mel = power.transpose(1, 2) @ self.mel_fb.to(dtype)  # (B, frames, n_mels)
            db = 10.0 * torch.log10(torch.clamp(mel, min=_AMIN))
        return db.unsqueeze(1)  # (B, frames, n_mels) -> (B, 1, frames, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel spectrogram.

        Args:
            wave: Waveform, shape (B, T).

        Returns:
            Tensor of shape (B, 1, T // hop + 1, n_mels).
        """
        x = self.log_mel(wave)  # (B, T) -> (B, 1, frames, n_mels)
        # bn0 normalises each mel bin separately, so mel bins must be the channel axis.
        x = self.bn0(x.transpose(1, 3))  # (B, n_mels, frames, 1)
        return x.transpose(1, 3)  # (B, 1, frames, n_mels)
