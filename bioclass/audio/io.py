"""Decode audio files with libsndfile (soundfile) and resample with soxr, as float32 mono."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bioclass.audio.access import unreadable_reason
from bioclass.audio.finite import all_nonfinite_message, nonfinite_note, replace_nonfinite
from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)

# Extensions libsndfile decodes; matched case-insensitively when folders are searched.
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".au",
    ".w64",
)


class AudioError(BioclassError):
    """An audio file that cannot be read (missing, corrupt, empty, unsupported)."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says."""

    sample_rate: int
    n_frames: int
    n_channels: int
    subtype: str = ""  # libsndfile's sample encoding, e.g. PCM_16 or FLOAT

    @property
    def duration_seconds(self) -> float:
        return self.n_frames / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read a file's header; raises `AudioError` for missing, empty or undecodable files."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: {_why_not_a_file(path)}")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    unreadable = unreadable_reason(path)  # else libsndfile says only "System error."
    if unreadable is not None:
        raise AudioError(f"{path}: cannot read file ({unreadable})")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({_reason(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: no audio samples")
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels), info.subtype)


@dataclass(frozen=True)
class Decoded:
    """A decoded waveform and what was wrong with the samples it came from."""

    wave: np.ndarray  # (n,) float32 at the asked rate, non-finite samples set to 0
    n_samples: int  # samples decoded from the channels in use (at the file's rate)
    n_nonfinite: int  # of them, NaN or Inf (replaced with 0 before mixing and resampling)

    @property
    def all_nonfinite(self) -> bool:
        return self.n_samples > 0 and self.n_nonfinite == self.n_samples

    @property
    def note(self) -> str | None:
        """The damage note (None when every sample was finite)."""
        return nonfinite_note(self.n_nonfinite, self.n_samples) if self.n_nonfinite else None


def read_audio(
    path: str | Path,
    sample_rate: int,
    channel: int | None = None,
    start_seconds: float | None = None,
    end_seconds: float | None = None,
) -> np.ndarray:
    """Decode (part of) a file as mono float32 at `sample_rate`.

    Non-finite samples (NaN/Inf, possible in float files) are replaced with 0 and a warning
    names the file and their count; callers that report damage themselves use `decode_audio`.

    Args:
        path: any format libsndfile reads (WAV incl. 8-bit/A-law/float, FLAC, OGG, MP3...).
        sample_rate: target rate in Hz; the file is resampled with soxr when it differs.
        channel: index of the channel to keep; None mixes all channels (mean).
        start_seconds, end_seconds: optional excerpt; only that part is read from disk.

    Returns:
        (n_samples,) float32 waveform.

    Raises:
        AudioError: the file cannot be decoded, or every sample of it (the excerpt) is
            non-finite.
    """
    decoded = decode_audio(path, sample_rate, channel, start_seconds, end_seconds)
    if decoded.all_nonfinite:
        raise AudioError(all_nonfinite_message(path, decoded.n_samples))
    if decoded.note:
        log.warning("%s: %s", path, decoded.note)
    return decoded.wave


def decode_audio(
    path: str | Path,
    sample_rate: int,
    channel: int | None = None,
    start_seconds: float | None = None,
    end_seconds: float | None = None,
) -> Decoded:
    """`read_audio` without judging the samples: the waveform (non-finite samples set to 0,
    even when all are) with their count, for callers that report or refuse damage themselves.

    Raises:
        AudioError: the file cannot be decoded.
    """
    info = audio_info(path)
    if channel is not None and channel >= info.n_channels:
        raise AudioError(f"{path}: has {info.n_channels} channel(s), channel {channel} asked for")
    start = 0 if start_seconds is None else int(round(start_seconds * info.sample_rate))
    stop = info.n_frames if end_seconds is None else int(round(end_seconds * info.sample_rate))
    start, stop = max(start, 0), min(stop, info.n_frames)
    if stop <= start:
        raise AudioError(
            f"{path}: excerpt {start_seconds}-{end_seconds} s is outside the file "
            f"({info.duration_seconds:.2f} s)"
        )
    try:
        with sf.SoundFile(str(path)) as f:
            if start:
                f.seek(start)
            data = f.read(stop - start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({_reason(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples could be decoded (truncated file?)")
    # Before mixing and resampling, which would spread one NaN over its neighbours.
    n_nonfinite = replace_nonfinite(data, channel)
    wave = data.mean(axis=1) if channel is None else data[:, channel]
    wave = resample(np.ascontiguousarray(wave, dtype=np.float32), info.sample_rate, sample_rate)
    n_samples = data.size if channel is None else data.shape[0]
    return Decoded(wave, n_samples, n_nonfinite)


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(n,) float32 at `from_rate` -> float32 at `to_rate` (identity when rates match)."""
    if from_rate == to_rate:
        return wave
    return soxr.resample(wave, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def fit_length(wave: np.ndarray, n_samples: int, offset: int | None = None) -> np.ndarray:
    """Zero-pad at the end, or crop, to exactly `n_samples`.

    Args:
        wave: (n,) waveform.
        n_samples: wanted length.
        offset: where a longer clip is cropped from; None takes the centre (evaluation).
    """
    n = wave.shape[0]
    if n == n_samples:
        return wave
    if n < n_samples:
        out = np.zeros(n_samples, dtype=np.float32)
        out[:n] = wave
        return out
    start = (n - n_samples) // 2 if offset is None else min(max(offset, 0), n - n_samples)
    return wave[start : start + n_samples]


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.removeprefix("Error opening ").strip()


def _why_not_a_file(path: Path) -> str:
    """A link that leads nowhere says so: "file not found" would send the user looking for a
    file that the folder listing shows."""
    if not path.is_symlink():
        return "file not found"
    target = os.readlink(path)
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop ({path.name} -> {target})"
        return f"broken symbolic link (to {target}, which does not exist)"
    return f"a link to {target}, which is not a file"
