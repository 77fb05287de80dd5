"""Reading one window of a recording at the model's rate, decoding only the frames it covers.

Training on annotated recordings cuts a new window at a random place every time it draws one,
so a window is read from the file on demand (seek, decode its frames, resample) rather than the
recording being decoded whole: memory holds one window per item, whatever the corpus size.

Resampling a short excerpt on its own would give samples that depend on where the excerpt was
cut (the resampler's grid starts at the excerpt's first frame, and its filter rings at both
ends). So the excerpt starts on a frame where the source and target sample grids meet (a multiple
of source_rate / gcd), which puts its resampled samples exactly on the grid of the whole file
resampled at once, and it reaches `RESAMPLE_MARGIN_S` beyond the window on each side, which is
cut off again: a window then equals the same stretch of the whole resampled file to float
precision (measured for 8 to 48 kHz sources at 16 kHz: largest difference 3e-7).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

from bioclass.audio.finite import replace_nonfinite
from bioclass.audio.io import AudioError, AudioInfo, _reason, resample

RESAMPLE_MARGIN_S = 0.05  # frames decoded beyond each end of a window for the resampler


def read_window(
    path: str | Path,
    info: AudioInfo,
    sample_rate: int,
    start: int,
    n_samples: int,
    channel: int | None = None,
) -> np.ndarray:
    """Samples `start .. start + n_samples` of a recording at `sample_rate`, as float32 mono.

    Args:
        path: the recording.
        info: its header (`audio_info`), read once by the caller.
        sample_rate: the rate `start` and `n_samples` count in (the model's).
        start: first sample, counted at `sample_rate` from the start of the file; may be
            negative, and the window may reach past the end: samples outside the file are 0.
        n_samples: window length.
        channel: channel to keep; None mixes all channels (mean).

    Raises:
        AudioError: the file cannot be decoded (or lacks the channel).
    """
    if channel is not None and channel >= info.n_channels:
        raise AudioError(f"{path}: has {info.n_channels} channel(s), channel {channel} asked for")
    rate = info.sample_rate
    out = np.zeros(n_samples, dtype=np.float32)
    if rate == sample_rate:
        first, last = max(start, 0), min(start + n_samples, info.n_frames)
        if last > first:
            out[first - start : last - start] = _frames(path, first, last, channel)
        return out
    g = math.gcd(rate, sample_rate)
    step_in, step_out = rate // g, sample_rate // g  # grid blocks: step_in frames -> step_out
    margin = math.ceil(RESAMPLE_MARGIN_S * sample_rate / step_out)
    first_block = max(start // step_out - margin, 0)
    last_block = -(-(start + n_samples) // step_out) + margin
    first, last = first_block * step_in, min(last_block * step_in, info.n_frames)
    if last <= first:
        return out
    excerpt = resample(_frames(path, first, last, channel), rate, sample_rate)
    offset = start - first_block * step_out  # where the window starts in the excerpt
    lo = max(offset, 0)
    hi = min(offset + n_samples, excerpt.shape[0])
    if hi > lo:
        out[lo - offset : hi - offset] = excerpt[lo:hi]
    return out


def _frames(path: str | Path, first: int, last: int, channel: int | None) -> np.ndarray:
    """Frames `first .. last` of the file, mono float32."""
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(first)
            data = f.read(last - first, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({_reason(exc)})") from None
    if data.shape[0] < last - first:
        raise AudioError(
            f"{path}: decoded {data.shape[0]} of the {last - first} frames asked for from frame "
            f"{first} (truncated file?)"
        )
    # Before mixing and resampling, which would spread one NaN over the window (the recording
    # was checked and reported once when the sources were read: see `check_finite`).
    replace_nonfinite(data, channel)
    wave = data.mean(axis=1) if channel is None else data[:, channel]
    return np.ascontiguousarray(wave, dtype=np.float32)
