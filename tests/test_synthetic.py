"""Tests for the synthetic signal generator: determinism, where each call's energy lies, SNR,
long-recording truth tables, and files that read back correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bioclass.synthetic import (
    BACKGROUND_LABEL,
    SPECIES,
    make_ambience,
    make_clip,
    make_clip_dataset,
    make_long_recording,
    random_profile,
    synthesise_clip,
)
from bioclass.synthetic.calls import (
    BARK_BAND_HZ,
    MAX_CALL_FREQUENCY_HZ,
    MAX_CALL_SECONDS,
    PULSE_RATE_RANGE_HZ,
    bark_bursts,
    fm_trill,
    pulse_train,
)

SAMPLE_RATE = 8000


def _power_spectrum(signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and power of a zero-padded FFT."""
    n_fft = 1 << int(np.ceil(np.log2(len(signal) * 4)))
    power = np.abs(np.fft.rfft(signal, n=n_fft)) ** 2
    return np.fft.rfftfreq(n_fft, d=1.0 / sample_rate), power


def _peak_frequency_hz(signal: np.ndarray, sample_rate: int) -> float:
    frequencies_hz, power = _power_spectrum(signal, sample_rate)
    return float(frequencies_hz[np.argmax(power)])


def _envelope_rate_hz(
    signal: np.ndarray, sample_rate: int, min_rate_hz: float, max_rate_hz: float
) -> float:
    """Dominant repetition rate of the amplitude envelope, from its autocorrelation."""
    window = max(int(0.004 * sample_rate), 1)
    envelope = np.convolve(np.abs(signal), np.ones(window) / window, mode="same")
    envelope = envelope - envelope.mean()
    autocorrelation = np.correlate(envelope, envelope, mode="full")[len(envelope) - 1 :]
    lags = np.arange(int(sample_rate / max_rate_hz), int(sample_rate / min_rate_hz) + 1)
    values = autocorrelation[lags]
    local_peaks = np.flatnonzero((values[1:-1] >= values[:-2]) & (values[1:-1] >= values[2:])) + 1
    # The first strong peak is the period; later ones are its multiples.
    strong = local_peaks[values[local_peaks] >= 0.6 * values[local_peaks].max()]
    return sample_rate / float(lags[strong[0]])


@pytest.mark.parametrize("name", sorted(SPECIES))
def test_species_are_deterministic(name: str) -> None:
    first = SPECIES[name](np.random.default_rng(7), SAMPLE_RATE)
    second = SPECIES[name](np.random.default_rng(7), SAMPLE_RATE)
    other = SPECIES[name](np.random.default_rng(8), SAMPLE_RATE)
    np.testing.assert_array_equal(first, second)
    assert first.shape != other.shape or not np.array_equal(first, other)


def test_clips_and_ambience_are_deterministic() -> None:
    for label in [BACKGROUND_LABEL, *SPECIES]:
        first = make_clip(np.random.default_rng(3), label, 1.5, SAMPLE_RATE, 10.0)
        second = make_clip(np.random.default_rng(3), label, 1.5, SAMPLE_RATE, 10.0)
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(
        make_ambience(np.random.default_rng(5), 1.0, SAMPLE_RATE),
        make_ambience(np.random.default_rng(5), 1.0, SAMPLE_RATE),
    )


@pytest.mark.parametrize("name", sorted(SPECIES))
def test_calls_are_normalised_smooth_and_band_limited(name: str) -> None:
    # 16 kHz so energy above 3.8 kHz (which 8 kHz sampling could not hold) would show.
    sample_rate = 16000
    for seed in range(5):
        call = SPECIES[name](np.random.default_rng(seed), sample_rate)
        assert call.dtype == np.float32
        assert np.max(np.abs(call)) == pytest.approx(1.0, abs=1e-6)
        assert len(call) <= MAX_CALL_SECONDS * sample_rate
        # Smooth onsets/offsets: the waveform starts and ends at (almost) zero.
        assert np.max(np.abs(call[:3])) < 1e-2 and np.max(np.abs(call[-3:])) < 1e-2
        frequencies_hz, power = _power_spectrum(call, sample_rate)
        assert power[frequencies_hz > MAX_CALL_FREQUENCY_HZ].sum() < 1e-4 * power.sum()


def test_harmonic_peak_is_the_fundamental_between_300_and_700_hz() -> None:
    for seed in range(10):
        call = SPECIES["harmonic"](np.random.default_rng(seed), SAMPLE_RATE)
        assert 300.0 <= _peak_frequency_hz(call, SAMPLE_RATE) <= 700.0
        assert 0.3 * SAMPLE_RATE - 1 <= len(call) <= 0.8 * SAMPLE_RATE + 1


def test_pulse_train_repeats_at_the_configured_rate() -> None:
    for rate_hz in (9.0, 12.0, 14.0):
        call = pulse_train(np.random.default_rng(1), SAMPLE_RATE, rate_hz=rate_hz, n_pulses=8)
        estimated_hz = _envelope_rate_hz(call, SAMPLE_RATE, 5.0, 20.0)
        assert estimated_hz == pytest.approx(rate_hz, abs=0.5)


def test_pulses_species_rate_and_band() -> None:
    low_hz, high_hz = PULSE_RATE_RANGE_HZ
    for seed in range(8):
        call = SPECIES["pulses"](np.random.default_rng(seed), SAMPLE_RATE)
        estimated_hz = _envelope_rate_hz(call, SAMPLE_RATE, 5.0, 20.0)
        assert low_hz - 0.7 <= estimated_hz <= high_hz + 0.7
        frequencies_hz, power = _power_spectrum(call, SAMPLE_RATE)
        in_band = (frequencies_hz >= 900.0) & (frequencies_hz <= 2100.0)
        assert power[in_band].sum() > 0.9 * power.sum()


def test_trill_peak_between_2_and_3_khz_and_fm_rate() -> None:
    for seed in range(10):
        call = SPECIES["trill"](np.random.default_rng(seed), SAMPLE_RATE)
        assert 2000.0 <= _peak_frequency_hz(call, SAMPLE_RATE) <= 3000.0
    call = fm_trill(
        SAMPLE_RATE, carrier_hz=2500.0, fm_rate_hz=25.0, fm_depth_hz=200.0, duration_seconds=0.8
    )
    assert _envelope_rate_hz(call, SAMPLE_RATE, 15.0, 40.0) == pytest.approx(25.0, abs=1.0)


def test_bark_energy_band_and_burst_count() -> None:
    call = bark_bursts(
        np.random.default_rng(2), SAMPLE_RATE, bark_seconds=[0.1, 0.12, 0.09], gap_seconds=0.2
    )
    frequencies_hz, power = _power_spectrum(call, SAMPLE_RATE)
    in_band = (frequencies_hz >= BARK_BAND_HZ[0] - 150) & (frequencies_hz <= BARK_BAND_HZ[1] + 150)
    assert power[in_band].sum() > 0.95 * power.sum()
    window = int(0.01 * SAMPLE_RATE)
    envelope = np.convolve(np.abs(call), np.ones(window) / window, mode="same")
    loud_samples = np.flatnonzero(envelope > 0.1 * envelope.max())
    # Bursts are separated by quiet stretches longer than 0.1 s (the gaps are 0.2 s).
    n_bursts = 1 + int(np.sum(np.diff(loud_samples) > 0.1 * SAMPLE_RATE))
    assert n_bursts == 3
    assert len(call) == pytest.approx((0.1 + 0.12 + 0.09 + 2 * 0.2) * SAMPLE_RATE, abs=3)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_clip_snr_matches_request(snr_db: float) -> None:
    for seed, label in enumerate(SPECIES):
        clip = synthesise_clip(np.random.default_rng(seed), label, 2.0, SAMPLE_RATE, snr_db)
        assert clip.audio.shape == clip.background.shape == (2 * SAMPLE_RATE,)
        assert clip.call_start_sample is not None and clip.call_end_sample is not None
        extent = slice(clip.call_start_sample, clip.call_end_sample)
        call = clip.audio[extent].astype(np.float64) - clip.background[extent]
        noise = clip.background[extent].astype(np.float64)
        measured_db = 10.0 * np.log10(np.mean(call**2) / np.mean(noise**2))
        assert measured_db == pytest.approx(snr_db, abs=1.0)


def test_background_clip_is_ambience_at_requested_level() -> None:
    clip = synthesise_clip(np.random.default_rng(0), BACKGROUND_LABEL, 1.2, SAMPLE_RATE, 10.0)
    assert clip.call_start_sample is None
    np.testing.assert_array_equal(clip.audio, clip.background)
    profile = random_profile(np.random.default_rng(1))
    ambience = make_ambience(np.random.default_rng(2), 1.2, SAMPLE_RATE, profile=profile)
    assert len(ambience) == round(1.2 * SAMPLE_RATE)
    assert np.sqrt(np.mean(ambience.astype(np.float64) ** 2)) == pytest.approx(
        profile.rms, rel=1e-3
    )


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown label"):
        make_clip(np.random.default_rng(0), "unicorn", 1.0, SAMPLE_RATE, 10.0)


def test_long_recording_truth_and_file(tmp_path: Path) -> None:
    path = tmp_path / "recording_20240501_053000.flac"
    duration_seconds = 30.0
    # Short chunks so calls straddle chunk boundaries.
    truth = make_long_recording(
        path, np.random.default_rng(4), duration_seconds, SAMPLE_RATE, 8, chunk_seconds=7.0
    )
    assert list(truth.columns) == ["start_time", "end_time", "label"]
    assert len(truth) == 8
    assert sorted(truth["label"].unique()) == sorted(SPECIES)
    starts, ends = truth["start_time"].to_numpy(), truth["end_time"].to_numpy()
    assert np.all(starts >= 0.0) and np.all(ends <= duration_seconds) and np.all(ends > starts)
    assert np.all(starts[1:] >= ends[:-1])

    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, 30 * SAMPLE_RATE)
    assert info.subtype == "PCM_16"
    audio, _ = sf.read(path)
    outside = np.ones(len(audio), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        outside[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))] = False
    ambience_rms = np.sqrt(np.mean(audio[outside] ** 2))
    for start, end in zip(starts, ends, strict=True):
        segment = audio[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]
        # Default SNRs are >= 5 dB, so every call stands clearly above the ambience.
        assert np.sqrt(np.mean(segment**2)) > 1.5 * ambience_rms


def test_long_recording_rejects_too_many_calls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        make_long_recording(tmp_path / "x.wav", np.random.default_rng(0), 5.0, SAMPLE_RATE, 10)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_clip_dataset_files_read_back(tmp_path: Path, fmt: str) -> None:
    counts = {BACKGROUND_LABEL: 4, "harmonic": 3, "trill": 2}
    table = make_clip_dataset(
        tmp_path, np.random.default_rng(11), counts, SAMPLE_RATE, (1.0, 1.5), (0.0, 20.0), 3, fmt
    )
    assert list(table.columns) == ["file", "label", "group"]
    assert table["label"].value_counts().to_dict() == counts
    # Classes with at least as many clips as groups appear in every group.
    assert table[table["label"] == BACKGROUND_LABEL]["group"].nunique() == 3
    assert table[table["label"] == "harmonic"]["group"].nunique() == 3
    for row in table.itertuples():
        assert row.file.startswith(f"clips/{row.label}/") and row.file.endswith(f".{fmt}")
        info = sf.info(tmp_path / row.file)
        assert info.samplerate == SAMPLE_RATE and info.channels == 1
        assert info.subtype == "PCM_16"
        assert 1.0 * SAMPLE_RATE - 1 <= info.frames <= 1.5 * SAMPLE_RATE + 1
        audio, _ = sf.read(tmp_path / row.file)
        assert np.max(np.abs(audio)) < 1.0


def test_clip_dataset_is_byte_reproducible(tmp_path: Path) -> None:
    counts = {BACKGROUND_LABEL: 2, "pulses": 2, "bark": 2}
    tables = [
        make_clip_dataset(tmp_path / name, np.random.default_rng(20211), counts, n_groups=2)
        for name in ("a", "b")
    ]
    assert tables[0].equals(tables[1])
    for relative in tables[0]["file"]:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
