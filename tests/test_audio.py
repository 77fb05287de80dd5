"""Tests for audio decoding: formats, channels, resampling, excerpts, broken files, fit_length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bioclass.audio import AUDIO_EXTENSIONS, AudioError, audio_info, fit_length, read_audio
from bioclass.core.errors import BioclassError

SR = 16000


def peak_hz(wave: np.ndarray, sample_rate: int) -> float:
    """Frequency of the largest FFT bin (Hann-windowed)."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sample_rate)[np.argmax(spectrum)])


def assert_mono_float32(wave: np.ndarray) -> None:
    assert isinstance(wave, np.ndarray)
    assert wave.ndim == 1, f"expected mono (n,), got shape {wave.shape}"
    assert wave.dtype == np.float32, wave.dtype


# --- formats ------------------------------------------------------------------------------------

# (format, subtype, extension, max abs error vs. the source at the same rate, length tolerance)
FORMATS = [
    ("WAV", "PCM_U8", "wav", 0.01, 0),
    ("WAV", "PCM_16", "wav", 1e-4, 0),
    ("WAV", "ALAW", "wav", 0.02, 0),
    ("WAV", "ULAW", "wav", 0.02, 0),
    ("WAV", "FLOAT", "wav", 1e-7, 0),
    ("FLAC", "PCM_16", "flac", 1e-4, 0),
    ("OGG", "VORBIS", "ogg", None, 0),
    ("MP3", "MPEG_LAYER_III", "mp3", None, 2400),
]


@pytest.mark.parametrize(("fmt", "subtype", "ext", "max_err", "len_tol"), FORMATS)
def test_formats_decode_to_float32_mono(
    tmp_path, write_audio, make_sine, fmt, subtype, ext, max_err, len_tol
):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile here cannot write {fmt}/{subtype}")
    source = make_sine(440.0, 1.0, SR)
    path = write_audio(tmp_path / f"tone.{ext}", source, SR, format=fmt, subtype=subtype)
    wave = read_audio(path, SR)
    assert_mono_float32(wave)
    assert abs(len(wave) - len(source)) <= len_tol, (subtype, len(wave))
    assert np.all(np.isfinite(wave))
    if max_err is not None:
        err = np.abs(wave - source).max()
        assert err <= max_err, f"{subtype}: max error {err}"
    else:  # lossy codecs: same tone, similar level
        assert peak_hz(wave, SR) == pytest.approx(440.0, abs=3)
        rms_ratio = np.sqrt(np.mean(wave**2)) / np.sqrt(np.mean(source**2))
        assert 0.8 < rms_ratio < 1.2, f"{subtype}: rms ratio {rms_ratio}"


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("WAV", "PCM_U8", "wav"),
        ("WAV", "ALAW", "wav"),
        ("FLAC", "PCM_24", "flac"),
        ("OGG", "VORBIS", "ogg"),
    ],
)
def test_formats_resample_to_target_rate(tmp_path, write_audio, make_sine, fmt, subtype, ext):
    source = make_sine(1000.0, 1.0, 22050)
    path = write_audio(tmp_path / f"tone.{ext}", source, 22050, format=fmt, subtype=subtype)
    wave = read_audio(path, SR)
    assert_mono_float32(wave)
    assert abs(len(wave) - SR) <= 1, len(wave)
    assert peak_hz(wave, SR) == pytest.approx(1000.0, abs=2)


def test_audio_info_reads_header(tmp_path, write_audio):
    path = write_audio(tmp_path / "s.flac", np.zeros((12345, 3), np.float32), 22050)
    info = audio_info(path)
    assert (info.sample_rate, info.n_frames, info.n_channels) == (22050, 12345, 3)
    assert info.duration_seconds == pytest.approx(12345 / 22050)


def test_extensions_are_lower_case_with_dot():
    assert all(e.startswith(".") and e == e.lower() for e in AUDIO_EXTENSIONS)
    assert {".wav", ".flac", ".ogg", ".mp3"} <= set(AUDIO_EXTENSIONS)


# --- channels -----------------------------------------------------------------------------------


def stereo(tmp_path: Path, write_audio) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.5, 0.5, size=(SR // 4, 2)).astype(np.float32)
    return write_audio(tmp_path / "stereo.wav", data, SR, subtype="FLOAT"), data


def test_stereo_is_mixed_to_mean(tmp_path, write_audio):
    path, data = stereo(tmp_path, write_audio)
    wave = read_audio(path, SR)
    assert_mono_float32(wave)
    np.testing.assert_allclose(wave, data.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("channel", [0, 1])
def test_channel_picks_one_channel(tmp_path, write_audio, channel):
    path, data = stereo(tmp_path, write_audio)
    wave = read_audio(path, SR, channel=channel)
    assert_mono_float32(wave)
    np.testing.assert_array_equal(wave, data[:, channel])


def test_channel_out_of_range(tmp_path, write_audio):
    path, _ = stereo(tmp_path, write_audio)
    with pytest.raises(AudioError, match=r"2 channel\(s\), channel 2") as info:
        read_audio(path, SR, channel=2)
    assert str(path) in str(info.value)
    mono = write_audio(tmp_path / "mono.wav", np.zeros(100, np.float32), SR)
    with pytest.raises(AudioError, match="channel 1"):
        read_audio(mono, SR, channel=1)


# --- resampling ---------------------------------------------------------------------------------


def test_resample_44100_to_16000_keeps_frequency_and_length(tmp_path, write_audio, make_sine):
    source = make_sine(1000.0, 2.0, 44100)
    path = write_audio(tmp_path / "cd.wav", source, 44100, subtype="PCM_16")
    wave = read_audio(path, 16000)
    assert_mono_float32(wave)
    assert abs(len(wave) - 32000) <= 1, len(wave)
    assert peak_hz(wave, 16000) == pytest.approx(1000.0, abs=1)
    # the level is preserved (away from the edges)
    middle = wave[1000:-1000]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_upsampling_8000_to_16000(tmp_path, write_audio, make_sine):
    path = write_audio(tmp_path / "low.wav", make_sine(300.0, 1.0, 8000), 8000, subtype="PCM_16")
    wave = read_audio(path, 16000)
    assert abs(len(wave) - 16000) <= 1
    assert peak_hz(wave, 16000) == pytest.approx(300.0, abs=1)


def test_same_rate_is_bit_exact(tmp_path, write_audio):
    data = np.random.default_rng(1).uniform(-1, 1, 1000).astype(np.float32)
    path = write_audio(tmp_path / "f.wav", data, SR, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path, SR), data)


# --- excerpts -----------------------------------------------------------------------------------


def ramp_file(tmp_path: Path, write_audio, sample_rate: int = 1000, seconds: int = 4) -> Path:
    """Float WAV whose sample k holds k / 10000: a sample's value tells its position."""
    n = sample_rate * seconds
    data = (np.arange(n) / 10000).astype(np.float32)
    return write_audio(tmp_path / "ramp.wav", data, sample_rate, subtype="FLOAT")


def test_excerpt_reads_the_right_samples(tmp_path, write_audio):
    path = ramp_file(tmp_path, write_audio)
    wave = read_audio(path, 1000, start_seconds=1.5, end_seconds=2.25)
    expected = (np.arange(1500, 2250) / 10000).astype(np.float32)
    np.testing.assert_array_equal(wave, expected)


def test_excerpt_open_ended(tmp_path, write_audio):
    path = ramp_file(tmp_path, write_audio)
    tail = read_audio(path, 1000, start_seconds=3.0)
    assert len(tail) == 1000 and tail[0] == np.float32(0.3)
    head = read_audio(path, 1000, end_seconds=0.5)
    assert len(head) == 500 and head[0] == 0.0 and head[-1] == np.float32(0.0499)


def test_excerpt_is_clipped_to_file(tmp_path, write_audio):
    path = ramp_file(tmp_path, write_audio)
    wave = read_audio(path, 1000, start_seconds=3.5, end_seconds=10.0)
    assert len(wave) == 500 and wave[0] == np.float32(0.35)


def test_excerpt_outside_file(tmp_path, write_audio):
    path = ramp_file(tmp_path, write_audio)
    with pytest.raises(AudioError, match="outside the file") as info:
        read_audio(path, 1000, start_seconds=5.0, end_seconds=6.0)
    assert str(path) in str(info.value)
    with pytest.raises(AudioError, match="outside"):
        read_audio(path, 1000, start_seconds=2.0, end_seconds=2.0)


def test_excerpt_with_resampling_picks_the_right_tone(tmp_path, write_audio, make_sine):
    # 1 s at 600 Hz, then 1 s at 2000 Hz, written at 44.1 kHz
    source = np.concatenate([make_sine(600.0, 1.0, 44100), make_sine(2000.0, 1.0, 44100)])
    path = write_audio(tmp_path / "two.flac", source, 44100)
    first = read_audio(path, SR, start_seconds=0.1, end_seconds=0.9)
    second = read_audio(path, SR, start_seconds=1.1, end_seconds=1.9)
    assert abs(len(first) - int(0.8 * SR)) <= 1 and abs(len(second) - int(0.8 * SR)) <= 1
    assert peak_hz(first, SR) == pytest.approx(600.0, abs=2)
    assert peak_hz(second, SR) == pytest.approx(2000.0, abs=2)


def test_excerpt_in_ogg(tmp_path, write_audio, make_sine):
    source = np.concatenate([make_sine(500.0, 1.0, SR), make_sine(3000.0, 1.0, SR)])
    path = write_audio(tmp_path / "two.ogg", source, SR, format="OGG", subtype="VORBIS")
    second = read_audio(path, SR, start_seconds=1.2, end_seconds=1.8)
    assert abs(len(second) - int(0.6 * SR)) <= 1
    assert peak_hz(second, SR) == pytest.approx(3000.0, abs=5)


# --- broken files -------------------------------------------------------------------------------


def assert_audio_error_names(path: Path, match: str | None = None, **kwargs) -> str:
    with pytest.raises(AudioError) as info:
        read_audio(path, SR, **kwargs)
    msg = str(info.value)
    assert str(path) in msg, f"message should name the file: {msg}"
    if match is not None:
        assert match in msg, msg
    assert isinstance(info.value, BioclassError)
    return msg


def test_missing_file(tmp_path):
    assert_audio_error_names(tmp_path / "gone.wav", "not found")
    with pytest.raises(AudioError, match="not found"):
        audio_info(tmp_path / "gone.wav")


def test_directory_is_not_a_file(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    assert_audio_error_names(folder, "not found")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert_audio_error_names(path, "empty")


def test_header_only_wav_has_no_samples(tmp_path, write_audio):
    path = write_audio(tmp_path / "nothing.wav", np.zeros(0, np.float32), SR, subtype="PCM_16")
    assert path.stat().st_size > 0
    assert_audio_error_names(path)


@pytest.mark.parametrize("name", ["garbage.wav", "garbage.flac", "garbage.mp3", "garbage.ogg"])
def test_garbage_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert_audio_error_names(path, "cannot decode")


def test_text_file_with_wav_extension(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    assert_audio_error_names(path, "cannot decode")


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("WAV", "PCM_16", "wav"),
        ("WAV", "PCM_U8", "wav"),
        ("FLAC", "PCM_16", "flac"),
        ("OGG", "VORBIS", "ogg"),
    ],
)
def test_truncated_file_decodes_partially_or_raises_audio_error(
    tmp_path, write_audio, make_sine, fmt, subtype, ext
):
    source = make_sine(440.0, 1.0, SR)
    full = write_audio(tmp_path / f"full.{ext}", source, SR, format=fmt, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    try:
        wave = read_audio(cut, SR)
    except AudioError as exc:  # any other exception type fails the test
        assert str(cut) in str(exc), str(exc)
    else:
        assert_mono_float32(wave)
        assert 0 < len(wave) < len(source), f"{subtype}: {len(wave)} samples from half a file"
        np.testing.assert_allclose(wave, source[: len(wave)], atol=0.01)


def test_truncated_flac_raises_audio_error(tmp_path, write_audio, make_sine):
    full = write_audio(tmp_path / "full.flac", make_sine(440.0, 1.0, SR), SR)
    data = full.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])
    assert_audio_error_names(cut, "cannot decode")


def test_wav_header_only_cut_inside_header(tmp_path, write_audio, make_sine):
    full = write_audio(tmp_path / "full.wav", make_sine(440.0, 0.5, SR), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:30])
    assert_audio_error_names(cut)


# --- fit_length ---------------------------------------------------------------------------------


def test_fit_length_pads_at_end_with_zeros():
    wave = np.arange(1, 6, dtype=np.float32)
    out = fit_length(wave, 8)
    assert out.dtype == np.float32 and out.shape == (8,)
    np.testing.assert_array_equal(out, [1, 2, 3, 4, 5, 0, 0, 0])
    np.testing.assert_array_equal(wave, [1, 2, 3, 4, 5], err_msg="input must not change")


def test_fit_length_same_length_unchanged():
    wave = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4), wave)
    np.testing.assert_array_equal(fit_length(wave, 4, offset=2), wave)


def test_fit_length_crops_centre_without_offset():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(fit_length(wave, 5), [2, 3, 4, 5, 6])  # (10-5)//2 = 2


def test_fit_length_crops_at_offset_and_clamps():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4, offset=0), [0, 1, 2, 3])
    np.testing.assert_array_equal(fit_length(wave, 4, offset=5), [5, 6, 7, 8])
    np.testing.assert_array_equal(fit_length(wave, 4, offset=6), [6, 7, 8, 9])
    np.testing.assert_array_equal(fit_length(wave, 4, offset=9), [6, 7, 8, 9])
    np.testing.assert_array_equal(fit_length(wave, 4, offset=-3), [0, 1, 2, 3])


def test_fit_length_offset_ignored_when_padding():
    wave = np.ones(3, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 5, offset=2), [1, 1, 1, 0, 0])
