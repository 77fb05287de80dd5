"""Positive pairs for contrastive pretraining (Fonseca et al., 2021): two patches of one
recording at random positions, each mixed back with a little of another recording.

Pair number `k` is a pure function of `(seed, k)`, so a resumed run sees exactly the pairs an
uninterrupted run would, whichever data-loader worker decodes them. Patches are read as
seekable excerpts: a recording is never decoded whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch

from bioclass.audio import AudioError, decode_audio, fit_length
from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)

_MAX_TRIES = 8  # draws of another recording when an excerpt turns out unreadable


def patch_starts(
    duration_s: float, patch_s: float, sampling: str, rng: np.random.Generator
) -> tuple[float, float]:
    """Start times (s) of the two patches of a pair.

    Args:
        duration_s: the recording's length.
        patch_s: patch length.
        sampling: 'random' (independent uniform positions; may overlap), 'non_overlapping'
            (at least one patch length apart; falls back to random when the recording is too
            short for two separate patches) or 'same' (one patch twice: the ablation baseline).
        rng: the pair's generator.
    """
    room = max(0.0, duration_s - patch_s)
    first = float(rng.uniform(0.0, room)) if room > 0 else 0.0
    if sampling == "same":
        return first, first
    if sampling == "non_overlapping" and room >= patch_s:
        # Allowed second starts: [0, first - patch] and [first + patch, room].
        left = max(0.0, first - patch_s)
        right = max(0.0, room - (first + patch_s))
        u = float(rng.uniform(0.0, left + right))
        second = u if u < left else first + patch_s + (u - left)
        return first, second
    second = float(rng.uniform(0.0, room)) if room > 0 else 0.0
    return first, second


def mix_back(
    patch: np.ndarray, background: np.ndarray, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Add `background` scaled so its energy is a random fraction in [0, alpha] of `patch`'s.

    The foreground stays dominant (alpha = 0.05: at least 13 dB above the background); a silent
    patch or background is returned unmixed (there is no energy to be relative to).
    """
    e_patch = float(np.mean(patch.astype(np.float64) ** 2))
    e_back = float(np.mean(background.astype(np.float64) ** 2))
    if e_patch <= 0 or e_back <= 0 or alpha <= 0:
        return patch
    ratio = float(rng.uniform(0.0, alpha))
    gain = np.sqrt(ratio * e_patch / e_back)
    return (patch + gain * background).astype(np.float32)


class PairDataset(torch.utils.data.Dataset):
    """Item `k` -> (2, patch_samples) waveforms: the two views' patches of pair `k`.

    Args:
        recordings: the archive index (file, duration_s).
        sample_rate: rate patches are resampled to.
        patch_seconds: patch length.
        sampling: see `patch_starts`.
        mixback_alpha: mix-back strength (0 = off).
        channel: channel index, or None for the mono mix.
        seed: the run's seed.
    """

    def __init__(
        self,
        recordings: pd.DataFrame,
        sample_rate: int,
        patch_seconds: float,
        sampling: str,
        mixback_alpha: float,
        channel: int | None,
        seed: int,
    ) -> None:
        self.files = recordings["file"].tolist()
        durations = recordings["duration_s"].to_numpy(dtype=np.float64)
        self.durations = durations
        # Recordings are drawn in proportion to their length: every second of audio is equally
        # likely to be seen (short files are not over-represented).
        weights = np.maximum(durations, patch_seconds)
        self.weights = weights / weights.sum()
        self.sample_rate = sample_rate
        self.patch_seconds = patch_seconds
        self.n_samples = int(round(patch_seconds * sample_rate))
        self.sampling = sampling
        self.mixback_alpha = mixback_alpha if len(self.files) > 1 else 0.0
        self.channel = channel
        self.seed = seed
        self._unreadable: set[int] = set()
        self._warned: set[int] = set()  # recordings whose NaN/Inf samples were mentioned

    def __len__(self) -> int:
        return 2**31 - 1  # pairs are generated, not stored

    def _excerpt(self, index: int, start: float) -> np.ndarray:
        decoded = decode_audio(
            self.files[index], self.sample_rate, self.channel, start, start + self.patch_seconds
        )
        # The archive's float files were checked when it was indexed (a file all NaN/Inf left
        # out, the others listed); here such samples are silence, said once per recording.
        if decoded.n_nonfinite and index not in self._warned:
            self._warned.add(index)
            log.warning("%s: NaN/Inf samples in its patches are set to 0", self.files[index])
        return np.array(fit_length(decoded.wave, self.n_samples))

    def _draw(self, rng: np.random.Generator, exclude: int | None = None) -> int:
        weights = self.weights
        if exclude is not None or self._unreadable:
            weights = weights.copy()
            weights[list(self._unreadable)] = 0.0
            if exclude is not None:
                weights[exclude] = 0.0
            if weights.sum() <= 0:
                raise BioclassError("no readable recording left to draw patches from")
            weights = weights / weights.sum()
        return int(rng.choice(len(weights), p=weights))

    def __getitem__(self, item: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, 5, item])
        for _ in range(_MAX_TRIES):
            index = self._draw(rng)
            try:
                starts = patch_starts(self.durations[index], self.patch_seconds, self.sampling, rng)
                views = [self._excerpt(index, s) for s in starts]
                if self.mixback_alpha > 0:
                    for v, view in enumerate(views):
                        other = self._draw(rng, exclude=index)
                        start = float(
                            rng.uniform(0.0, max(0.0, self.durations[other] - self.patch_seconds))
                        )
                        views[v] = mix_back(
                            view, self._excerpt(other, start), self.mixback_alpha, rng
                        )
                return torch.from_numpy(np.stack(views))  # (2, patch_samples)
            except AudioError as exc:
                # A recording that broke after indexing (e.g. damaged mid-file): stop drawing it.
                log.warning("skipping %s", exc)
                self._unreadable.add(index)
        raise BioclassError(f"could not read a pair after {_MAX_TRIES} tries; check the archive")


class PairBatches:
    """Batch `i`: pairs `i * batch_size` to `(i + 1) * batch_size - 1` (for i in start..stop);
    with `world_size` > 1, rank `rank`'s contiguous share of them."""

    def __init__(
        self, batch_size: int, start: int, stop: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.batch_size, self.start, self.stop = batch_size, start, stop
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch_size // self.world_size
        for i in range(self.start, self.stop):
            first = i * self.batch_size + self.rank * share
            yield list(range(first, first + share))


def pairs_per_epoch(recordings: pd.DataFrame, patch_seconds: float) -> int:
    """How many non-overlapping patch pairs the archive holds (the size of an epoch)."""
    per_file = np.maximum(1, (recordings["duration_s"] // (2 * patch_seconds)).astype(int))
    return int(per_file.sum())
