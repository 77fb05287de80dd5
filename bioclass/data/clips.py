"""Clip datasets: decode labelled clips (once, into memory, or on demand) as fixed-length waves."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bioclass.audio import AudioError, fit_length, read_audio
from bioclass.errors import BioclassError

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


def _row_times(row: pd.Series) -> tuple[float | None, float | None]:
    start = row.get("start_time")
    end = row.get("end_time")
    start = None if start is None or pd.isna(start) else float(start)
    end = None if end is None or pd.isna(end) else float(end)
    return start, end


def load_clip(row: pd.Series, spec: ClipSpec) -> np.ndarray:
    """Decode one row's audio (the excerpt when it has start/end times), not yet length-fitted."""
    start, end = _row_times(row)
    return read_audio(row["file"], spec.sample_rate, spec.channel, start, end)


def decode_all(
    table: pd.DataFrame,
    spec: ClipSpec,
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], pd.DataFrame, pd.DataFrame]:
    """Decode every clip once; unreadable ones are dropped and reported.

    Returns:
        (waves, kept_table, bad) where `bad` has columns file, error.

    Raises:
        BioclassError: when more than `max_bad_fraction` of the clips cannot be read.
    """
    waves, kept, bad = [], [], []
    for i, (_, row) in enumerate(table.iterrows()):
        try:
            waves.append(load_clip(row, spec))
            kept.append(i)
        except AudioError as exc:
            bad.append({"file": row["file"], "error": str(exc)})
        if on_progress is not None:
            on_progress(1)
    bad_table = pd.DataFrame(bad, columns=["file", "error"])
    check_bad_fraction(len(bad), len(table), max_bad_fraction, bad_table)
    return waves, table.iloc[kept].reset_index(drop=True), bad_table


def check_bad_fraction(n_bad: int, n_total: int, max_fraction: float, bad: pd.DataFrame) -> None:
    """Refuse to go on when too many files are broken; otherwise warn with a count."""
    if n_bad == 0:
        return
    first = bad["error"].iloc[0]
    if n_bad > max_fraction * n_total:
        raise BioclassError(
            f"{n_bad} of {n_total} audio clips cannot be read (more than "
            f"data.max_bad_fraction={max_fraction:g}); first: {first}"
        )
    log.warning("skipped %d of %d unreadable audio clips; first: %s", n_bad, n_total, first)


class ClipDataset(torch.utils.data.Dataset):
    """Labelled clips as fixed-length waveforms.

    Items are addressed by `(index, crop_seed)`: the seed picks the crop position of clips longer
    than the window, so training stays reproducible whichever worker decodes it. A plain int
    index (evaluation) takes the centre crop.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        classes: list[str],
        spec: ClipSpec,
        waves: list[np.ndarray] | None = None,
    ) -> None:
        self.table = table.reset_index(drop=True)
        self.classes = list(classes)
        self.spec = spec
        self.waves = waves  # decoded clips when cached, else decoded on demand
        index = {c: i for i, c in enumerate(self.classes)}
        self.targets = np.array([index[label] for label in self.table["label"]], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, crop_seed = item if isinstance(item, tuple) else (item, None)
        if self.waves is not None:
            wave = self.waves[index]
        else:
            row = self.table.iloc[index]
            try:
                wave = load_clip(row, self.spec)
            except AudioError as exc:
                raise BioclassError(
                    f"{exc} (decoded on demand; set data.cache: true to "
                    "check every file before training)"
                ) from None
        n = self.spec.n_samples
        offset = None
        if crop_seed is not None and wave.shape[0] > n:
            offset = int(np.random.default_rng(crop_seed).integers(0, wave.shape[0] - n + 1))
        return torch.from_numpy(np.array(fit_length(wave, n, offset))), int(self.targets[index])
