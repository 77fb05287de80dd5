"""Train/validation split grouped by recording (or site), stratified by class, seeded."""

from __future__ import annotations

import math

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


def clips_for_validation(val_fraction: float) -> int:
    """The fewest clips (each its own group) a class needs before `grouped_split` sends one to
    validation: a group goes when it brings the class closer to its target n * val_fraction,
    which a single clip does once the target passes 1/2; and one group always stays to train."""
    return max(2, math.floor(0.5 / val_fraction) + 1)


def no_validation_reason(
    table: pd.DataFrame, val_fraction: float, group_column: str = "group"
) -> str:
    """Why `grouped_split` left the validation split empty, naming the classes too small to
    spare a clip (with their clips, and their groups where there is only one), and what to do."""
    groups = table[group_column].astype(str) if group_column in table.columns else table["file"]
    counts = pd.crosstab(groups, table["label"])
    clips = counts.sum(axis=0)
    n_groups = (counts > 0).sum(axis=0)
    need = clips_for_validation(val_fraction)
    small = [
        c for c in clips.sort_values(kind="stable").index if clips[c] < need or n_groups[c] < 2
    ]
    shown = []
    for label in small[:8]:
        n = int(clips[label])
        one_group = " from one group/recording" if n > 1 and n_groups[label] < 2 else ""
        shown.append(f"{label} ({n} clip{'s' if n != 1 else ''}{one_group})")
    more = f" and {len(small) - 8} more" if len(small) > 8 else ""
    listed = (
        f"these classes cannot spare a clip: {', '.join(shown)}{more}"
        if small
        else "no class can spare a clip"
    )
    return (
        f"{listed}. With data.val_fraction {val_fraction:g} a class needs {need} clips from 2 or "
        "more groups/recordings before one goes to validation: add clips, raise "
        "data.val_fraction (0.5 needs 2), or mark 'val' rows in a 'split' column of a labels CSV"
    )


def grouped_folds(
    table: pd.DataFrame, n_folds: int, seed: int, group_column: str = "group"
) -> pd.Series:
    """Assign whole groups to `n_folds` folds so each class is spread as evenly as it can be.

    Groups are visited in a seeded random order, the groups of rare classes first (they decide
    whether every fold can see a class), each one going to the fold that holds least of its
    classes so far (relative to their totals), ties to the smallest fold.

    Returns:
        A Series of fold numbers 0 .. n_folds - 1 aligned with `table`'s index.

    Raises:
        BioclassError: fewer groups than folds.
    """
    groups = table[group_column].astype(str) if group_column in table.columns else table["file"]
    counts = pd.crosstab(groups, table["label"])  # (n_groups, n_classes)
    if len(counts) < n_folds:
        raise BioclassError(
            f"train.cv_folds is {n_folds} but the clips come from only {len(counts)} "
            "groups/recordings (each fold needs whole groups): use fewer folds"
        )
    totals = np.maximum(counts.sum(axis=0).to_numpy(), 1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))
    rarity = (counts.to_numpy() / totals).max(axis=1)
    order = order[np.argsort(-rarity[order], kind="stable")]
    held = np.zeros((n_folds, counts.shape[1]))  # share of each class per fold
    sizes = np.zeros(n_folds)
    fold_of = {}
    for i in order:
        row = counts.iloc[i].to_numpy() / totals
        present = row > 0
        load = held[:, present].sum(axis=1)  # how much of these classes each fold has
        best = int(np.lexsort((sizes, load))[0])
        held[best] += row
        sizes[best] += counts.iloc[i].sum()
        fold_of[counts.index[i]] = best
    return pd.Series(groups.map(fold_of).to_numpy(), index=table.index)
