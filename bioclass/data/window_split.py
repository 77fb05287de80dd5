"""Train/validation split of annotated recordings, grouped so that no recording (and no group:
site, deployment) has windows on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError
from bioclass.data.split import grouped_split

NO_BOX = "(no box)"  # the stratum of a recording with nothing boxed


def merged_groups(recs: np.ndarray, groups: np.ndarray) -> dict[int, str]:
    """Each recording's group, where groups that share a recording are one group (a recording
    named with two groups by two tables, or by a table and a label CSV, joins them).

    Args:
        recs: (n,) recording index of each row.
        groups: (n,) the group the row gives it.
    Returns:
        recording -> the name of its merged group (the first name seen).
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for rec, group in zip(recs, groups, strict=True):
        a, b = f"r:{rec}", f"g:{group}"
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = root(a), root(b)
        if ra != rb:  # keep a group at the root, the one seen first
            if ra.startswith("g:"):
                parent[rb] = ra
            else:
                parent[ra] = rb
    return {int(rec): root(f"r:{rec}")[2:] for rec in recs}


def split_recordings(
    rows: pd.DataFrame, files: list[str], val_fraction: float, seed: int
) -> pd.Series:
    """'train', 'val' or 'test' for each recording that `rows` mention.

    Args:
        rows: one row per box (its `label`) or per recording without boxes (`NO_BOX`), with
            `rec`, `group` and `split` (a fixed split, or None): the strata and the grouping.
        files: recording paths, for messages.
        val_fraction: share of groups held out when no split is fixed.
        seed: the split's seed.

    Groups with a fixed split keep it (a label CSV's `split` column); the others are split by
    `grouped_split` (whole groups, stratified by label, seeded). Without any validation group
    after that, one is carved from the training groups.

    Raises:
        BioclassError: a group whose rows fix different splits.
    """
    rows = rows.copy()
    group_of = merged_groups(rows["rec"].to_numpy(), rows["group"].astype(str).to_numpy())
    rows["group"] = rows["rec"].map(group_of)
    fixed: dict[str, str] = {}
    for group, rec, split in zip(rows["group"], rows["rec"], rows["split"], strict=True):
        if split is None or (isinstance(split, float) and np.isnan(split)):
            continue
        if fixed.setdefault(group, split) != split:
            raise BioclassError(
                f"{files[rec]} (group {group}) has rows in the {fixed[group]} and the {split} "
                "split; windows of one recording or group must be on one side: give its rows "
                "one split"
            )
    rows["split"] = rows["group"].map(fixed).astype(object)
    free = rows["split"].isna()
    if free.any():
        rows.loc[free, "split"] = grouped_split(rows[free], val_fraction, seed).to_numpy()
    if not (rows["split"] == "val").any():
        train = rows["split"] == "train"
        rows.loc[train, "split"] = grouped_split(rows[train], val_fraction, seed).to_numpy()
    per_rec = rows.groupby("rec", sort=True)["split"].first()
    return per_rec
