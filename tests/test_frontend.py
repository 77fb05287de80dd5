"""Tests for the log-mel front end: filterbank and dB values against librosa, shapes, dtypes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bioclass.core.errors import BioclassError
from bioclass.models.frontend import (
    FrontendConfig,
    LogMel,
    mel_band_centres,
    mel_filterbank,
    mel_frequencies,
)


def _test_signal(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Noise plus a few tones and a chirp: energy in every mel band, not just white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    y = 0.1 * rng.standard_normal(t.size)
    for f in (440.0, 1500.0, 3200.0):
        y += 0.3 * np.sin(2 * np.pi * f * t)
    y += 0.2 * np.sin(2 * np.pi * (200.0 * t + 0.5 * 1500.0 * t**2))
    return y.astype(np.float32)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (16000, 1024, 64, 50.0, 8000.0),
        (8000, 512, 64, 0.0, None),
        (32000, 1024, 128, 50.0, 14000.0),
    ],
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    ).T
    assert ours.shape == (n_fft // 2 + 1, n_mels)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-9)


def test_mel_frequencies_match_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.mel_frequencies(n_mels=66, fmin=50.0, fmax=8000.0, htk=False)
    np.testing.assert_allclose(mel_frequencies(66, 50.0, 8000.0), ref, rtol=1e-10)


@pytest.mark.parametrize("n_samples", [16000, 16001, 16319, 16320, 48000])
def test_frame_count(n_samples):
    cfg = FrontendConfig()
    out = LogMel(cfg)(torch.randn(2, n_samples))
    assert out.shape == (2, 1, n_samples // cfg.hop_length + 1, cfg.n_mels)
    assert cfg.n_frames(n_samples) == out.shape[2]


def test_sine_peaks_in_nearest_mel_band():
    cfg = FrontendConfig()
    t = torch.arange(cfg.sample_rate) / cfg.sample_rate
    wave = torch.sin(2 * torch.pi * 1000.0 * t).unsqueeze(0)  # (1, T)
    db = LogMel(cfg).log_mel(wave)[0, 0]  # (frames, n_mels)
    peak_band = int(db.mean(dim=0).argmax())
    expected = int(np.argmin(np.abs(mel_band_centres(cfg) - 1000.0)))
    assert peak_band == expected


@pytest.mark.parametrize(
    "cfg",
    [FrontendConfig(), FrontendConfig(sample_rate=32000, n_mels=128, f_min=50.0, f_max=14000.0)],
)
def test_log_mel_matches_librosa(cfg):
    librosa = pytest.importorskip("librosa")
    y = _test_signal(cfg.sample_rate, 1.5)
    ours = LogMel(cfg).log_mel(torch.from_numpy(y).unsqueeze(0))[0, 0].numpy()  # (frames, mels)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.fmax_hz,
        htk=False,
        norm="slaney",
    )
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T  # (frames, mels)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3)


def test_forward_applies_bn0_per_mel_bin():
    front = LogMel(FrontendConfig())
    wave = torch.randn(3, 16000)
    with torch.no_grad():
        front.bn0.weight.copy_(torch.linspace(0.5, 2.0, 64))
        front.bn0.running_mean.copy_(torch.linspace(-50.0, 10.0, 64))
        front.bn0.running_var.copy_(torch.linspace(1.0, 100.0, 64))
    front.eval()
    raw = front.log_mel(wave)  # (B, 1, frames, mels)
    bn = front.bn0
    expected = (raw - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(front(wave), expected)


def test_half_input_and_autocast_are_computed_in_float32():
    front = LogMel(FrontendConfig()).eval()
    wave = torch.randn(2, 16000)
    ref = front(wave)
    assert front(wave.half()).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = front(wave)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_buffers_not_in_state_dict():
    keys = set(LogMel(FrontendConfig()).state_dict())
    assert not any(k.startswith(("window", "mel_fb")) for k in keys)
    assert "bn0.weight" in keys


def test_too_short_input_is_a_user_error():
    with pytest.raises(BioclassError, match="too short"):
        LogMel(FrontendConfig())(torch.randn(1, 400))


def test_config_round_trip_through_json():
    cfg = FrontendConfig(sample_rate=32000, n_mels=128, f_max=14000.0)
    again = FrontendConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert FrontendConfig.from_dict({}) == FrontendConfig()
    assert FrontendConfig().fmax_hz == 8000.0


@pytest.mark.parametrize(
    "bad",
    [{"n_mel": 64}, {"f_max": 9000.0}, {"f_min": 9000.0}, {"hop_length": 0}, {"n_fft": 10.5}],
)
def test_bad_config_is_a_user_error(bad):
    with pytest.raises(BioclassError):
        FrontendConfig.from_dict(bad)
