"""Which detections to listen to: per class the top N by score, a seeded random N, or N
stratified over equal-width score bins.

Why equal-width bins, not quantiles: a detector's scores pile up near 1, so quantile bins
would spend most of the picks in the narrow high-score band where detections are dense (much as
a random draw does) and leave the low scores just above the threshold, where most false
positives are, with a bin or less. Equal-width bins between the class's lowest and highest
score sample the score axis evenly: every part of the range is heard, which is what is needed to
see where a class's precision drops and to find its hard negatives.
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError

STRATEGIES = ("top", "random", "stratified")
# The order a class's detections take before any draw: the same rows give the same picks
# whatever order the CSV lists them in.
CANONICAL = ["file", "start_time", "end_time", "row"]


def select_detections(
    detections: pd.DataFrame,
    strategy: str,
    per_class: int,
    bins: int = 5,
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Pick up to `per_class` detections of each class.

    Args:
        detections: the detections table (`file, start_time, end_time, label, score, row`...).
        strategy: 'top' (highest scores), 'random' (uniform, seeded) or 'stratified' (equal
            numbers from `bins` equal-width score bins, drawn at random inside each bin).
        per_class: picks per class; a class with fewer detections gives all of them.
        bins: score bins of the stratified strategy.
        seed: draws of the random and stratified strategies; each class draws from its own
            generator (seed and class name), so adding or leaving out a class (`labels`) does
            not change the picks of the others.
        labels: only these classes (default: every label of the table, sorted).

    Returns:
        The picked rows with a `rank` column (1 = highest score), ordered by label, then rank:
        whatever the strategy, a class is listened to from its highest score down.

    Raises:
        BioclassError: an unknown strategy, or a label without detections.
    """
    if strategy not in STRATEGIES:
        raise BioclassError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if per_class < 1 or bins < 1:
        raise BioclassError("per_class and bins must be at least 1")
    chosen = sorted(detections["label"].unique())
    if labels is not None:
        check_labels(detections, labels)
        chosen = sorted(set(labels))
    parts = []
    for label in chosen:
        group = detections[detections["label"] == label].sort_values(CANONICAL, kind="mergesort")
        if strategy == "top":
            picked = _by_score(group).head(per_class)
        elif strategy == "random":
            rng = class_rng(seed, label)
            n = min(per_class, len(group))
            picked = group.iloc[np.sort(rng.choice(len(group), size=n, replace=False))]
        else:
            picked = group.iloc[
                _stratified(group["score"].to_numpy(), per_class, bins, seed, label)
            ]
        picked = _by_score(picked)
        parts.append(picked.assign(rank=np.arange(1, len(picked) + 1)))
    if not parts:
        return detections.iloc[:0].assign(rank=pd.Series(dtype="int64"))
    return pd.concat(parts, ignore_index=True)


def check_labels(detections: pd.DataFrame, labels: Sequence[str]) -> None:
    """Every label asked for has detections (a typo would otherwise review nothing of it).

    Raises:
        BioclassError: naming the label, the labels there are and the closest one.
    """
    present = sorted(detections["label"].unique())
    for label in labels:
        if label not in present:
            close = difflib.get_close_matches(label, present, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BioclassError(
                f"no detections of {label!r} (labels with detections: "
                f"{', '.join(present) or 'none'}){hint}"
            )


def class_rng(seed: int, label: str) -> np.random.Generator:
    """The generator of one class: from the seed and a stable hash of the name (Python's
    `hash` of a string changes from run to run)."""
    return np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])


def score_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Each score's bin, 0 = lowest, of `bins` equal-width bins from min to max (the maximum
    falls in the last bin; all scores equal: one bin)."""
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        return np.zeros(len(scores), dtype=np.int64)
    edges = np.linspace(low, high, bins + 1)
    return np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)


def allocate(counts: Sequence[int], n: int) -> list[int]:
    """How many picks each bin gives: one per bin in turn, lowest bin first, skipping bins
    that have run out, until `n` (or every detection) is taken.

    So every bin gets `n // bins`, the remainder goes to the lowest bins (where the false
    positives are most likely), and the picks an emptier bin cannot give go to the others
    instead of being lost.
    """
    quota = [0] * len(counts)
    left = min(n, sum(counts))
    while left:
        for i, count in enumerate(counts):
            if left and quota[i] < count:
                quota[i] += 1
                left -= 1
    return quota


def _stratified(scores: np.ndarray, n: int, bins: int, seed: int, label: str) -> np.ndarray:
    """Positions of the picks among `scores` (already in canonical order)."""
    rng = class_rng(seed, label)
    which = score_bins(scores, bins)
    members = [np.flatnonzero(which == b) for b in range(bins)]
    quota = allocate([len(m) for m in members], n)
    picks = [rng.choice(m, size=q, replace=False) for m, q in zip(members, quota, strict=True) if q]
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=np.int64)


def _by_score(table: pd.DataFrame) -> pd.DataFrame:
    # Ties broken by the canonical order (mergesort is stable), so ranks are reproducible.
    return table.sort_values("score", ascending=False, kind="mergesort")
