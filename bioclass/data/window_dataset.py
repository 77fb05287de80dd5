"""Windows of annotated recordings as datasets: read on demand, with their multi-hot targets.

Memory stays bounded whatever the corpus: nothing is decoded ahead; each item reads its own
window from the file (`bioclass.audio.window.read_window`: a seek, the window's frames and a
small resampling margin). Measured on the Bird0 songs (`benchmarks/annotated_bird0.py`: 32 kHz
FLAC to 16 kHz, 0.2 s windows) that is about 1,300 windows/s on one core, against about
100,000 slices/s from an int16 memory-mapped copy of the resampled audio: the copy reads
faster, but costs a decoding pass before training and 115 MB of disk per hour of audio at
16 kHz in every run folder, while the on-demand reads took 3 % of the training wall time there
(and `train.num_workers` overlaps them with the steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from bioclass.audio.io import AudioInfo
from bioclass.audio.window import read_window
from bioclass.augment.wave import augment_wave, is_active
from bioclass.data.clips import ClipSpec
from bioclass.data.windows import WindowCorpus
from bioclass.recipe.schema import WaveAugmentSection


class WindowReader(Protocol):
    """What reads a window: samples `start .. start + n` of recording `rec` at the model's rate
    (zeros outside the file)."""

    def read(self, rec: int, start: int, n: int) -> np.ndarray: ...


@dataclass
class RecordingReader:
    """Reads windows from the recordings' files (their headers read once, beforehand)."""

    files: list[str]
    infos: list[AudioInfo]
    sample_rate: int
    channel: int | None = None

    def read(self, rec: int, start: int, n: int) -> np.ndarray:
        return read_window(
            self.files[rec], self.infos[rec], self.sample_rate, start, n, self.channel
        )


class TrainingWindows(torch.utils.data.Dataset):
    """Training windows addressed by `(rec, start, seed)` items (`WindowBatchSampler`): the
    window's samples (waveform-augmented, seeded by the item) and its multi-hot target.

    Its length is an epoch's worth of windows (the annotated time cut end to end), for
    `train.epochs`.
    """

    def __init__(
        self,
        corpus: WindowCorpus,
        reader: WindowReader,
        spec: ClipSpec,
        augment: WaveAugmentSection | None = None,
    ) -> None:
        self.corpus, self.reader, self.spec = corpus, reader, spec
        self.classes = corpus.classes
        self.augment = augment if augment is not None and is_active(augment) else None
        self.n_windows = max(1, int(corpus.annotated_seconds() / corpus.window_seconds))

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        rec, start, seed = item
        n = self.corpus.n_samples
        wave = self.reader.read(rec, start, n)
        if self.augment is not None:
            rng = np.random.default_rng([seed, 0])
            wave = augment_wave(wave, n, self.augment, rng, self.spec.sample_rate)
        target = self.corpus.targets(rec, start)
        return torch.from_numpy(np.ascontiguousarray(wave)), torch.from_numpy(target)


class FixedWindows(torch.utils.data.Dataset):
    """Validation windows: a fixed grid (`WindowCorpus.grid`), the same at every validation.

    Quacks like a `ClipDataset` of clips one window long (`spec`, `full_wave`, `classes`), so
    validation, calibration and thresholds score it with the clip code; `targets` is (N, C)
    multi-hot instead of class indices.
    """

    def __init__(
        self, corpus: WindowCorpus, reader: WindowReader, spec: ClipSpec, grid: pd.DataFrame
    ) -> None:
        self.corpus, self.reader, self.spec = corpus, reader, spec
        self.classes = corpus.classes
        self.table = pd.DataFrame(
            {
                "file": [corpus.files[r] for r in grid["rec"]],
                "start_time": grid["start"].to_numpy() / corpus.sample_rate,
            }
        )
        self.recs = grid["rec"].to_numpy(dtype=np.int64)
        self.starts = grid["start"].to_numpy(dtype=np.int64)
        self.targets = corpus.targets_of(self.recs, self.starts)

    def __len__(self) -> int:
        return len(self.recs)

    def full_wave(self, index: int) -> np.ndarray:
        return self.reader.read(int(self.recs[index]), int(self.starts[index]), self.spec.n_samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.full_wave(index)), torch.from_numpy(self.targets[index])


@dataclass
class WindowedData:
    """Training windows (random offsets) and validation windows (a fixed grid), multi-label.

    Attributes:
        split: every known stretch with its `kind` (annotated, reviewed, clip), `label` (a
            clip's or review's; empty for an annotated extent), `group` and `split` as used.
    """

    classes: list[str]
    train: TrainingWindows
    val: FixedWindows
    split: pd.DataFrame
    bad: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "error"]))
    duplicates: list[list[str]] = field(default_factory=list)
