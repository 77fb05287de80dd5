"""Checking many files before use, keeping the usable ones and listing the others: the one
loop behind training's header check, unlabelled audio and pretraining archives."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from bioclass.audio.finite import FLOAT_SUBTYPES, all_nonfinite_message, nonfinite_note
from bioclass.audio.io import AudioError, AudioInfo, audio_info

# The bad-files table every command writes: `kept` is False for a file (or clip) left out,
# True for one used after a repair (its non-finite samples set to 0; `error` says how many).
BAD_COLUMNS = ["file", "error", "kept"]
_CHECK_FRAMES = 1 << 16  # frames per block when a float file's samples are checked


def bad_table(rows: list[dict]) -> pd.DataFrame:
    """The bad-files table of `rows` (file, error, kept)."""
    frame = pd.DataFrame(rows, columns=BAD_COLUMNS)
    frame["kept"] = frame["kept"].astype(bool)
    return frame


def join_bad(*tables: pd.DataFrame) -> pd.DataFrame:
    """Several bad-files tables as one, in order."""
    return bad_table([row for t in tables for row in t.to_dict(orient="records")])


def probe_headers(
    files: Iterable[str | Path], on_progress: Callable[[int], None] | None = None
) -> tuple[dict[str, AudioInfo], pd.DataFrame]:
    """Header of each distinct file, in the order given.

    Returns:
        (readable: file -> AudioInfo; bad: one row per unreadable file, with the reason)
    """
    readable: dict[str, AudioInfo] = {}
    bad: dict[str, str] = {}
    for file in files:
        key = str(file)
        if key not in readable and key not in bad:
            try:
                readable[key] = audio_info(key)
            except AudioError as exc:
                bad[key] = str(exc)
        if on_progress is not None:
            on_progress(1)
    return readable, bad_table([{"file": f, "error": e, "kept": False} for f, e in bad.items()])


@dataclass(frozen=True)
class FiniteCheck:
    """What a check of the samples of a file (or of an excerpt of it) found."""

    n_samples: int  # samples of the channels in use
    n_nonfinite: int  # of them, NaN or Inf

    @property
    def note(self) -> str | None:
        return nonfinite_note(self.n_nonfinite, self.n_samples) if self.n_nonfinite else None


def check_finite(
    path: str | Path,
    channel: int | None = None,
    start_seconds: float | None = None,
    end_seconds: float | None = None,
    info: AudioInfo | None = None,
) -> FiniteCheck | None:
    """Count the non-finite samples of a float file (or excerpt), reading it block by block.

    Returns None, reading nothing, for a file whose samples cannot be non-finite (not a float
    subtype).

    Raises:
        AudioError: every sample is non-finite, or the file cannot be decoded.
    """
    info = info or audio_info(path)
    if info.subtype not in FLOAT_SUBTYPES:
        return None
    first = 0 if start_seconds is None else max(0, int(round(start_seconds * info.sample_rate)))
    stop = info.n_frames if end_seconds is None else int(round(end_seconds * info.sample_rate))
    stop = min(stop, info.n_frames)
    n_samples = n_nonfinite = 0
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(first)
            position = first
            while position < stop:
                block = f.read(min(_CHECK_FRAMES, stop - position), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                position += block.shape[0]
                used = block if channel is None else block[:, channel : channel + 1]
                n_samples += used.size
                n_nonfinite += int((~np.isfinite(used)).sum())
    except (sf.LibsndfileError, RuntimeError) as exc:
        if n_samples == 0:
            raise AudioError(f"{path}: cannot decode audio ({exc})") from None
        # Damaged further on: what was checked stands; the reads that use the file report it.
    if n_samples and n_nonfinite == n_samples:
        raise AudioError(all_nonfinite_message(path, n_samples))
    return FiniteCheck(n_samples, n_nonfinite)


def probe_samples(
    readable: dict[str, AudioInfo], channel: int | None = None
) -> tuple[dict[str, AudioInfo], pd.DataFrame]:
    """Check the samples of the float files among `readable` (other files cannot hold
    non-finite samples and are not read).

    Returns:
        (usable: the files kept, a file that is all NaN/Inf left out; bad: a row per file left
         out (kept False) and per file kept with non-finite samples (kept True, the count in
         its error))
    """
    usable: dict[str, AudioInfo] = {}
    rows = []
    for path, info in readable.items():
        try:
            check = check_finite(path, channel, info=info)
        except AudioError as exc:
            rows.append({"file": path, "error": str(exc), "kept": False})
            continue
        usable[path] = info
        if check is not None and check.note:
            rows.append({"file": path, "error": f"{path}: {check.note}", "kept": True})
    return usable, bad_table(rows)
