"""Batches of windows cut at random offsets from annotated recordings, balanced over classes
even though a window may hold several of them; resumable at any batch.

A balanced batch (`data.balanced`) is made of
- `random_share` of its windows drawn anywhere in the known stretches (uniform over annotated
  time: mostly background in field recordings, and whatever else happens to be there);
- the rest split equally between the strata: each class that has boxes (a box of the class
  drawn uniformly, then a window start drawn uniformly among those that make the box's class
  positive), and, when there are any, the hard negatives (reviewed `no` detections, labelled
  background clips: a stretch drawn uniformly, then a start inside it).

So a class with 20 boxes is drawn as often as one with 2,000, whatever else its windows hold;
the other classes a window catches are in its target as the overlap rule says. Unbalanced
batches are all random windows. Batch `i` is a pure function of `(seed, i)`, as for clips: a
new offset for every draw, every epoch, and a resumed run sees the batches an uninterrupted one
would.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bioclass.data.windows import WindowCorpus


class WindowBatchSampler:
    """Yields items `(rec, start, seed)` per batch for batches `start..stop-1`.

    Args:
        corpus: the training part of the corpus.
        batch_size: windows per batch.
        seed: the recipe's seed.
        balanced: strata drawn equally (else every window is a random one).
        random_share: share of a balanced batch drawn as random windows.
        start, stop: the batches to yield.
    """

    def __init__(
        self,
        corpus: WindowCorpus,
        batch_size: int,
        seed: int,
        balanced: bool,
        random_share: float,
        start: int = 0,
        stop: int = 0,
    ) -> None:
        self.batch_size, self.seed, self.balanced = batch_size, seed, balanced
        self.random_share = random_share
        self.start, self.stop = start, stop
        # Random windows: a stretch with probability proportional to its number of starts.
        self.stretch_rec = corpus.stretches["rec"].to_numpy()
        self.stretch_lo, self.stretch_hi = corpus.start_range(corpus.stretches)
        starts = (self.stretch_hi - self.stretch_lo + 1).astype(np.float64)
        self.stretch_p = starts / starts.sum() if len(starts) else starts
        # Strata: each class's boxes (ranges of positive starts), then the hard negatives.
        boxes = corpus.boxes
        lo, hi = corpus.positive_range() if len(boxes) else (np.zeros(0, int),) * 2
        usable = boxes["stretch"].to_numpy() >= 0
        cls = boxes["cls"].to_numpy()
        self.strata: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for c in range(len(corpus.classes)):
            mine = usable & (cls == c)
            if c != corpus.background and mine.any():
                self.strata.append((boxes["rec"].to_numpy()[mine], lo[mine], hi[mine]))
        if len(corpus.negatives):
            n_lo, n_hi = corpus.start_range(corpus.negatives)
            self.strata.append((corpus.negatives["rec"].to_numpy(), n_lo, n_hi))
        # An epoch: as many windows as fit the annotated time end to end.
        total = float(corpus.annotated_seconds())
        self.windows_per_epoch = max(1, int(total / corpus.window_seconds))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for i in range(self.start, self.stop):
            yield self.batch(i)

    def batch(self, i: int) -> list[tuple[int, int, int]]:
        """The items of batch number `i`: (recording, first sample, augmentation seed)."""
        rng = np.random.default_rng([self.seed, 11, i])
        n_random = self.batch_size
        if self.balanced and self.strata:
            n_random = int(round(self.random_share * self.batch_size))
        per_stratum = np.zeros(len(self.strata), dtype=np.int64)
        n_strata = self.batch_size - n_random
        if n_strata:
            per_stratum += n_strata // len(self.strata)
            extra = rng.choice(len(self.strata), n_strata % len(self.strata), replace=False)
            per_stratum[extra] += 1
        parts = [self._random(rng, n_random)]
        for (s_rec, s_lo, s_hi), k in zip(self.strata, per_stratum, strict=True):
            if k:
                pick = rng.integers(0, len(s_rec), size=k)
                parts.append((s_rec[pick], _uniform(rng, s_lo[pick], s_hi[pick])))
        recs = np.concatenate([p[0] for p in parts])
        starts = np.concatenate([p[1] for p in parts])
        order = rng.permutation(len(recs))
        seeds = rng.integers(0, 2**31 - 1, size=len(recs))
        return [
            (int(r), int(s), int(z))
            for r, s, z in zip(recs[order], starts[order], seeds, strict=True)
        ]

    def _random(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pick = rng.choice(len(self.stretch_rec), size=k, p=self.stretch_p)
        return self.stretch_rec[pick], _uniform(rng, self.stretch_lo[pick], self.stretch_hi[pick])


def _uniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """One integer uniformly in [lo, hi] for each pair."""
    return lo + (rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64).clip(0, hi - lo)
