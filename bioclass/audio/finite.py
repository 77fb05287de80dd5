"""Non-finite samples (NaN, +-Inf) in decoded audio: found, set to 0, counted and reported.

Float WAV/AIFF/W64 files store IEEE floats, so a bug upstream (a normalisation by zero, a
filter that blew up) can leave NaN or Inf samples in them. One such sample poisons everything
downstream: the resampler spreads it, the STFT and the trunk's convolutions carry it into every
window that overlaps it, and a training loss built on it diverges. They are replaced with 0
(digital silence: it adds no energy and no spectral content, where a held or interpolated value
would invent a signal) before any of that, and the file is reported as damaged with the count.
A file (or excerpt) whose every sample is non-finite holds no audio and is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# libsndfile subtypes that store IEEE floats: the only ones whose samples can be NaN or Inf (an
# integer or companded sample always decodes to a finite value). An up-front check of a
# collection reads only files of these subtypes; every read replaces non-finite samples anyway.
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def replace_nonfinite(data: np.ndarray, channel: int | None = None) -> int:
    """Set every NaN/Inf sample of decoded `data` (frames, channels) to 0, in place.

    Returns:
        How many samples of the channels in use were non-finite: every channel for the mono
        mix (`channel` None), else that channel alone.
    """
    bad = ~np.isfinite(data)
    if not bad.any():
        return 0
    data[bad] = 0.0
    return int(bad.sum() if channel is None else bad[:, channel].sum())


def nonfinite_note(n_nonfinite: int, n_samples: int) -> str:
    """The damage note of a file or clip with some non-finite samples."""
    return f"{n_nonfinite} of {n_samples} samples non-finite (NaN/Inf), replaced with 0"


def all_nonfinite_message(path: str | Path, n_samples: int) -> str:
    """Why a file or clip whose every sample is non-finite is refused."""
    return f"{path}: all {n_samples} samples are non-finite (NaN/Inf); no audio to use"
