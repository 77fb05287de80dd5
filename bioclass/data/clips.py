"""Clip datasets: decode labelled clips (once, into memory, or on demand) as fixed-length waves."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bioclass.audio import AudioError, Decoded, decode_audio, fit_length
from bioclass.audio.finite import all_nonfinite_message
from bioclass.audio.probe import bad_table
from bioclass.augment.wave import augment_wave, is_active
from bioclass.core.errors import BioclassError
from bioclass.recipe.schema import WaveAugmentSection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSpec:
    """How a row of the label table becomes a waveform."""

    sample_rate: int
    clip_seconds: float
    channel: int | None = None

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


def row_times(row: pd.Series) -> tuple[float | None, float | None]:
    """A label-table row's start and end times in seconds (None where it has none)."""
    start = row.get("start_time")
    end = row.get("end_time")
    start = None if start is None or pd.isna(start) else float(start)
    end = None if end is None or pd.isna(end) else float(end)
    return start, end


def load_clip(row: pd.Series, spec: ClipSpec) -> Decoded:
    """Decode one row's audio (the excerpt when it has start/end times), not yet length-fitted,
    non-finite samples set to 0 and counted."""
    start, end = row_times(row)
    return decode_audio(row["file"], spec.sample_rate, spec.channel, start, end)


class TooManyBadFiles(BioclassError):
    """More files or clips are unusable than the recipe allows; `bad` lists them all (for the
    run's bad_files.csv)."""

    def __init__(self, message: str, bad: pd.DataFrame) -> None:
        super().__init__(message)
        self.bad = bad


def decode_all(
    table: pd.DataFrame,
    spec: ClipSpec,
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], pd.DataFrame, pd.DataFrame]:
    """Decode every clip once; unreadable ones are dropped and reported, damaged ones (some
    samples NaN/Inf, set to 0) are kept and reported, and a clip whose every sample is NaN/Inf
    is dropped.

    Returns:
        (waves, kept_table, bad) where `bad` has columns file, error, kept (see
        `bioclass.audio.probe.BAD_COLUMNS`).

    Raises:
        TooManyBadFiles: when more than `max_bad_fraction` of the clips cannot be used.
    """
    waves, kept, bad = [], [], []
    for i, (_, row) in enumerate(table.iterrows()):
        try:
            decoded = load_clip(row, spec)
        except AudioError as exc:
            bad.append({"file": row["file"], "error": str(exc), "kept": False})
        else:
            if decoded.all_nonfinite:
                error = all_nonfinite_message(_clip_name(row), decoded.n_samples)
                bad.append({"file": row["file"], "error": error, "kept": False})
            else:
                if decoded.note:
                    error = f"{_clip_name(row)}: {decoded.note}"
                    bad.append({"file": row["file"], "error": error, "kept": True})
                waves.append(decoded.wave)
                kept.append(i)
        if on_progress is not None:
            on_progress(1)
    bad_frame = bad_table(bad)
    check_bad_fraction(bad_frame, len(table), max_bad_fraction)
    return waves, table.iloc[kept].reset_index(drop=True), bad_frame


def _clip_name(row: pd.Series) -> str:
    """The file, and the excerpt when the row cuts one."""
    start, end = row_times(row)
    if start is None and end is None:
        return str(row["file"])
    until = "end" if end is None else f"{end:g} s"
    return f"{row['file']} [{start or 0:g} s to {until}]"


def check_bad_fraction(bad: pd.DataFrame, n_total: int, max_fraction: float) -> None:
    """Refuse to go on when too many files are unusable; otherwise warn with counts.

    Args:
        bad: the bad-files table (file, error, kept): rows with `kept` False were left out,
            the others were used after their non-finite samples were set to 0.
        n_total: files or clips checked.
        max_fraction: the share of them that may be left out.
    """
    left_out = bad[~bad["kept"]]
    repaired = bad[bad["kept"]]
    if len(left_out) > max_fraction * n_total:
        raise TooManyBadFiles(
            f"{len(left_out)} of {n_total} audio clips cannot be read (more than "
            f"data.max_bad_fraction={max_fraction:g}); first: {left_out['error'].iloc[0]}",
            bad,
        )
    if len(left_out):
        log.warning(
            "skipped %d of %d unreadable audio clips; first: %s",
            len(left_out),
            n_total,
            left_out["error"].iloc[0],
        )
    if len(repaired):
        log.warning(
            "kept %d of %d damaged audio clips with their NaN/Inf samples set to 0; first: %s",
            len(repaired),
            n_total,
            repaired["error"].iloc[0],
        )


UNLABELLED = -1  # target of a clip without a label (semi-supervised training)


class ClipDataset(torch.utils.data.Dataset):
    """Clips as fixed-length waveforms with their class index (-1 for unlabelled clips).

    Items are addressed by `(index, crop_seed)`: the seed picks the crop position of clips longer
    than the window and seeds the waveform augmentations, so training stays reproducible whichever
    worker decodes it. A plain int index (evaluation) takes the centre crop, unaugmented.

    Args:
        table: rows with file, label (None = unlabelled) and optional start/end times.
        classes: class names; labels index into it.
        spec: decoding settings.
        waves: decoded clips (cache), or None to decode on demand.
        augment: waveform augmentations for training items, or None.
        views: augmented views per training item (2 for CLAR's contrastive pairs).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: list[str],
        spec: ClipSpec,
        waves: list[np.ndarray | None] | None = None,
        augment: WaveAugmentSection | None = None,
        views: int = 1,
    ) -> None:
        self.table = table.reset_index(drop=True)
        self.classes = list(classes)
        self.spec = spec
        self.waves = waves  # decoded clips when cached (None entries: decode on demand)
        self.augment = augment if augment is not None and is_active(augment) else None
        self.views = views
        index = {c: i for i, c in enumerate(self.classes)}
        self.targets = np.array(
            [UNLABELLED if _missing(label) else index[label] for label in self.table["label"]],
            dtype=np.int64,
        )

    def __len__(self) -> int:
        return len(self.table)

    def full_wave(self, index: int) -> np.ndarray:
        """Clip `index` as decoded, whole (not cropped or padded to the window)."""
        return self._wave(index)

    def _wave(self, index: int) -> np.ndarray:
        if self.waves is not None and self.waves[index] is not None:
            return self.waves[index]
        row = self.table.iloc[index]
        try:
            # Files were checked before training (non-finite samples counted and reported);
            # here NaN/Inf samples just become 0, as they did in that check's count.
            return load_clip(row, self.spec).wave
        except AudioError as exc:
            raise BioclassError(
                f"{exc} (decoded on demand; set data.cache: true to "
                "check every labelled file before training)"
            ) from None

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, crop_seed = item if isinstance(item, tuple) else (item, None)
        wave = self._wave(index)
        n = self.spec.n_samples
        if crop_seed is None:  # evaluation: centre crop, no augmentation
            return torch.from_numpy(np.array(fit_length(wave, n))), int(self.targets[index])
        if wave.shape[0] > n and (self.augment is None or not self.augment.random_pad_crop):
            offset = int(np.random.default_rng(crop_seed).integers(0, wave.shape[0] - n + 1))
            wave = wave[offset : offset + n]
        out = []
        for view in range(self.views):
            if self.augment is None:
                out.append(np.array(fit_length(wave, n)))
            else:
                rng = np.random.default_rng([crop_seed, view])
                out.append(augment_wave(wave, n, self.augment, rng, self.spec.sample_rate))
        stacked = out[0] if self.views == 1 else np.stack(out)  # (T,) or (views, T)
        return torch.from_numpy(stacked), int(self.targets[index])


def _missing(label: object) -> bool:
    return label is None or (isinstance(label, float) and np.isnan(label))
