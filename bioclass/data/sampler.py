"""Mini-batch samplers: class-balanced (Kong et al., PANNs) or uniform, resumable at any batch.

Batch `i` is a pure function of `(seed, i)`, so a resumed run sees exactly the batches an
uninterrupted run would, without storing sampler state. With several ranks (torchrun) every
rank draws the same whole batch and keeps its own contiguous share of it, so the ranks together
train on exactly the batch one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class BatchSampler:
    """Yields items `(index, crop_seed)` per batch for batches `start..stop-1`.

    A batch holds `batch_size` labelled items (targets >= 0), then `n_unlabelled` items drawn
    uniformly from the unlabelled ones (targets < 0), when there are any. With `world_size` > 1
    only rank `rank`'s share of each part is yielded (labelled and unlabelled are shared out
    separately, so every rank has the same mix).
    """

    def __init__(
        self,
        targets: np.ndarray,
        batch_size: int,
        seed: int,
        balanced: bool,
        start: int = 0,
        stop: int = 0,
        n_unlabelled: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        all_targets = np.asarray(targets)
        self.labelled = np.flatnonzero(all_targets >= 0)
        self.unlabelled = np.flatnonzero(all_targets < 0)
        self.targets = all_targets[self.labelled]
        self.batch_size = batch_size
        self.n_unlabelled = n_unlabelled if len(self.unlabelled) else 0
        self.seed = seed
        self.balanced = balanced
        self.start, self.stop = start, stop
        self.by_class = [np.flatnonzero(self.targets == c) for c in np.unique(self.targets)]
        self.batches_per_epoch = max(1, len(self.targets) // batch_size)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for i in range(self.start, self.stop):
            yield self.batch(i)

    def batch(self, i: int) -> list[tuple[int, int]]:
        """The items of batch number `i`."""
        rng = np.random.default_rng([self.seed, i])
        if self.balanced:
            indices = self._balanced(rng)
        else:
            epoch, j = divmod(i, self.batches_per_epoch)
            perm = np.random.default_rng([self.seed, 1 << 30, epoch]).permutation(len(self.targets))
            indices = perm[j * self.batch_size : (j + 1) * self.batch_size]
        indices = self.labelled[indices]
        if self.n_unlabelled:
            extra = np.random.default_rng([self.seed, 3, i]).choice(
                self.unlabelled, self.n_unlabelled
            )
            indices = np.concatenate([indices, extra])
        crop_seeds = rng.integers(0, 2**31 - 1, size=len(indices))
        if self.world_size > 1:
            keep = self._share(len(indices) - self.n_unlabelled, self.n_unlabelled)
            indices, crop_seeds = indices[keep], crop_seeds[keep]
        return [(int(k), int(s)) for k, s in zip(indices, crop_seeds, strict=True)]

    def _share(self, n_labelled: int, n_unlabelled: int) -> np.ndarray:
        """Positions of this rank's items in a whole batch: its slice of the labelled part, then
        of the unlabelled part."""
        labelled = np.array_split(np.arange(n_labelled), self.world_size)[self.rank]
        extra = np.array_split(np.arange(n_labelled, n_labelled + n_unlabelled), self.world_size)
        return np.concatenate([labelled, extra[self.rank]])

    def _balanced(self, rng: np.random.Generator) -> np.ndarray:
        # Equal share per class (the remainder to random classes), items drawn within a class.
        n_classes = len(self.by_class)
        per_class = np.full(n_classes, self.batch_size // n_classes)
        per_class[rng.choice(n_classes, self.batch_size % n_classes, replace=False)] += 1
        picks = [
            rng.choice(members, k) for members, k in zip(self.by_class, per_class, strict=True)
        ]
        return rng.permutation(np.concatenate(picks))
