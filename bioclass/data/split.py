"""Train/validation split grouped by recording (or site), stratified by class, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError


def grouped_split(
    table: pd.DataFrame, val_fraction: float, seed: int, group_column: str = "group"
) -> pd.Series:
    """Assign whole groups to 'train' or 'val' so each class gets about `val_fraction` in val.

    Groups come from `group_column` when present (recording, site, deployment), else each file
    is its own group: clips of one recording never land on both sides, which would inflate
    validation scores. Groups are visited in a seeded random order and each one goes to
    validation while that brings the classes it holds closer to their targets.

    Returns:
        A Series of 'train'/'val' aligned with `table`'s index.
    """
    groups = table[group_column].astype(str) if group_column in table.columns else table["file"]
    counts = pd.crosstab(groups, table["label"])  # (n_groups, n_classes)
    if len(counts) < 2:
        raise BioclassError(
            "cannot make a validation split: all clips come from one group/recording "
            "(add a 'group' column, more files, or a 'split' column)"
        )
    target = counts.sum(axis=0).to_numpy() * val_fraction
    taken = np.zeros_like(target)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))
    # Rare classes first: their few groups decide the split; common classes fill in around them.
    rarity = (counts.to_numpy() / counts.sum(axis=0).to_numpy()).max(axis=1)
    order = order[np.argsort(-rarity[order], kind="stable")]
    val_groups = set()
    for i in order:
        row = counts.iloc[i].to_numpy()
        before = np.abs(target - taken) / np.maximum(target, 1)
        after = np.abs(target - taken - row) / np.maximum(target, 1)
        if after.sum() < before.sum():
            val_groups.add(counts.index[i])
            taken += row
    # Every class must keep at least one training group.
    train_counts = counts.loc[[g for g in counts.index if g not in val_groups]].sum(axis=0)
    for label in counts.columns[train_counts.to_numpy() == 0]:
        # Follow the (sorted) table order: set order would vary between processes.
        holders = [g for g in counts.index if g in val_groups and counts.at[g, label] > 0]
        val_groups.discard(holders[0])
    return pd.Series(np.where(groups.isin(val_groups), "val", "train"), index=table.index)
