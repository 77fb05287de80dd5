"""Cutting the clips to listen to: the detection with `pad` seconds of context each side,
clamped to the recording, at the recording's own rate and channels, as FLAC or WAV.

The samples are copied, not re-rendered: integer PCM is read and written as integers, so a clip
of a 16- or 24-bit recording holds exactly the recording's samples (FLAC is lossless). FLAC
holds at most 24 bits: float and lossy (MP3, Ogg) sources become 24-bit FLAC, 32-bit PCM loses
its lowest 8 bits; `wav` keeps every source exactly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bioclass.audio import AudioError
from bioclass.audio.finite import replace_nonfinite
from bioclass.core.atomic import atomic_write_bytes

CLIP_FORMATS = ("flac", "wav")
# Bits of the integers libsndfile decodes each integer subtype to (mu-law and A-law expand to
# 16-bit PCM); any other subtype is float or a lossy codec.
INT_BITS = {
    "PCM_S8": 8,
    "PCM_U8": 8,
    "PCM_16": 16,
    "PCM_24": 24,
    "PCM_32": 32,
    "ULAW": 16,
    "ALAW": 16,
}
_UNSAFE = re.compile(r"[^\w.-]+")  # anything but letters, digits, _ . - in a clip's name


@dataclass(frozen=True)
class Clip:
    """One cut clip: where it lies in its recording, and its audio."""

    path: Path
    start_frame: int  # in the recording
    n_frames: int
    sample_rate: int
    n_channels: int
    n_nonfinite: int = 0  # NaN/Inf samples of a float recording, written as 0

    @property
    def start_seconds(self) -> float:
        return self.start_frame / self.sample_rate

    @property
    def seconds(self) -> float:
        return self.n_frames / self.sample_rate


def safe_name(text: str) -> str:
    """`text` usable as one file or folder name on every system (no separators, no spaces)."""
    return _UNSAFE.sub("_", text).strip("._") or "_"


def class_folders(labels: Iterable[str]) -> dict[str, str]:
    """Each label's folder name; labels that differ only in unsafe characters (`a b`, `a/b`)
    get `_2`, `_3`... rather than sharing a folder."""
    folders: dict[str, str] = {}
    taken: set[str] = set()
    for label in sorted(labels):
        base = safe_name(label)
        name, k = base, 1
        while name.casefold() in taken:  # case-insensitive file systems (macOS, Windows)
            k += 1
            name = f"{base}_{k}"
        taken.add(name.casefold())
        folders[label] = name
    return folders


def clip_name(
    rank: int, width: int, recording: str, start: float, channel: int | None, fmt: str
) -> str:
    """`0001_<recording stem>_<start>[_chN].<fmt>`: sorts by rank inside a class's folder and
    says where the detection is."""
    channel_part = "" if channel is None else f"_ch{channel}"
    stem = safe_name(Path(recording).stem)
    return f"{rank:0{width}d}_{stem}_{start:.3f}{channel_part}.{fmt}"


def clip_frames(
    start: float, end: float, pad: float, sample_rate: int, n_frames: int
) -> tuple[int, int]:
    """First and end frame of the clip of `start`-`end` s with `pad` s each side, clamped to
    the recording's `n_frames`."""
    first = max(0, int(round((start - pad) * sample_rate)))
    stop = min(n_frames, int(round((end + pad) * sample_rate)))
    return first, stop


def cut_clip(
    recording: str,
    target: Path,
    start: float,
    end: float,
    pad: float,
    channel: int | None = None,
    fmt: str = "flac",
) -> Clip:
    """Write the clip of `start`-`end` (seconds in `recording`) with `pad` s of context.

    Args:
        channel: keep this channel only (0-based; a scan of separate channels); None keeps all.

    Raises:
        AudioError: the recording cannot be decoded, or the detection lies outside it.
        OutputError: the clip cannot be written.
    """
    try:
        info = sf.info(recording)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{recording}: cannot decode audio ({exc})") from None
    sr, total = int(info.samplerate), int(info.frames)
    first, stop = clip_frames(start, end, pad, sr, total)
    if stop <= first or start >= total / sr:
        raise AudioError(
            f"{recording}: the detection at {start:g}-{end:g} s is outside the recording "
            f"({total / sr:g} s long); is it the right file?"
        )
    if channel is not None and channel >= info.channels:
        raise AudioError(
            f"{recording}: has {info.channels} channel(s), the detection is on channel {channel}"
        )
    bits = INT_BITS.get(info.subtype)
    dtype = "int32" if bits is not None else "float64" if info.subtype == "DOUBLE" else "float32"
    try:
        with sf.SoundFile(recording) as f:
            f.seek(first)
            data = f.read(stop - first, dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{recording}: cannot decode audio ({exc})") from None
    if len(data) < stop - first:
        # A truncated file whose header promises more than it holds: a clip shorter than its
        # table says would shift every later selection in the Raven table.
        raise AudioError(
            f"{recording}: only {len(data)} of {stop - first} frames could be decoded "
            "(truncated file?)"
        )
    if channel is not None:
        data = data[:, [channel]]
    # A float recording's NaN/Inf samples would reach the listener as clicks or silence of the
    # whole clip (and a 24-bit FLAC cannot hold them at all): 0, as the scanner reads them.
    n_nonfinite = replace_nonfinite(data) if bits is None else 0
    # Encoded in memory (a clip is seconds long): soundfile's callbacks would print a
    # traceback of a failed disk write and report it as a codec error.
    encoded = io.BytesIO()
    sf.write(
        encoded,
        np.ascontiguousarray(data),
        sr,
        format=fmt.upper(),
        subtype=_subtype(fmt, bits, info.subtype),
    )
    atomic_write_bytes(target, encoded.getvalue())
    return Clip(target, first, stop - first, sr, data.shape[1], n_nonfinite)


def _subtype(fmt: str, bits: int | None, source: str) -> str:
    """The clip's sample format: the source's where the container holds it."""
    if bits is not None:
        if bits <= 16:
            return "PCM_16"
        return "PCM_24" if bits == 24 or fmt == "flac" else "PCM_32"
    if fmt == "flac":
        return "PCM_24"
    return "DOUBLE" if source == "DOUBLE" else "FLOAT"
