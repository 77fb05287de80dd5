"""From the recipe's data section to train/validation datasets, with every problem reported."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bioclass.audio import AudioError
from bioclass.audio.probe import bad_table, check_finite, join_bad, probe_headers
from bioclass.data.clips import (
    ClipDataset,
    ClipSpec,
    check_bad_fraction,
    decode_all,
    row_times,
)
from bioclass.data.duplicates import find_duplicates
from bioclass.data.labels import LabelError, labels_from_csv, labels_from_folders, resolve_classes
from bioclass.data.split import grouped_split, no_validation_reason
from bioclass.data.unlabelled import mark_unlabelled, unlabelled_windows, withhold_labels
from bioclass.recipe.objectives import resolve_objective, uses_unlabelled
from bioclass.recipe.schema import Recipe

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Everything training needs from the data, plus what was found wrong with it."""

    classes: list[str]
    train: ClipDataset
    val: ClipDataset
    split: pd.DataFrame  # file, label, group, split (+ times): the assignment actually used
    bad: pd.DataFrame = field(default_factory=lambda: bad_table([]))
    duplicates: list[list[str]] = field(default_factory=list)


def read_label_table(recipe: Recipe) -> tuple[pd.DataFrame, str]:
    """The label table named by the recipe (folder layout or CSV) and a name for messages."""
    d = recipe.data
    if d.root:
        return labels_from_folders(d.root), d.root
    if d.labels_csv:
        return labels_from_csv(d.labels_csv, d.audio_root), d.labels_csv
    raise LabelError(
        "the recipe names no data: set data.root (folder per class) or data.labels_csv"
    )


def clip_spec(recipe: Recipe) -> ClipSpec:
    """Decoding settings of the recipe."""
    a = recipe.audio
    return ClipSpec(a.sample_rate, a.clip_seconds, a.channel)


def assign_splits(table: pd.DataFrame, duplicates: list[list[str]], recipe: Recipe) -> pd.DataFrame:
    """Add `group` and `split` ('train'/'val'/'test') columns.

    An explicit split column is kept (a missing validation part is carved from 'train');
    otherwise a grouped, stratified, seeded split is made, with duplicate files forced into one
    group so identical audio cannot sit on both sides.
    """
    table = table.copy()
    if "group" not in table.columns:
        table["group"] = table["file"]
    table["group"] = table["group"].fillna(table["file"]).astype(str)
    for same in duplicates:
        members = table["file"].isin(same)
        table.loc[table["group"].isin(table.loc[members, "group"]), "group"] = same[0]
    if "split" in table.columns:
        crossing = [
            g for g in duplicates if table.loc[table["file"].isin(g), "split"].nunique() > 1
        ]
        if crossing:
            log.warning(
                "%d set(s) of identical files sit in different splits (leak), e.g. %s",
                len(crossing),
                ", ".join(crossing[0]),
            )
        if not (table["split"] == "val").any():
            train = table["split"] == "train"
            table.loc[train, "split"] = grouped_split(
                table[train], recipe.data.val_fraction, recipe.seed
            )
    else:
        table["split"] = grouped_split(table, recipe.data.val_fraction, recipe.seed)
    return table


@dataclass
class LabelledClips:
    """The labelled clips of a recipe, read, split and decoded once, ready to be partitioned
    into training and validation clips (once, or once per cross-validation fold).

    Attributes:
        table: every row with its `group` and `split` (train/val/test) and a `_row` number.
        used: the readable train and validation rows (`_row` numbers into `table`).
        waves: their decoded audio (None when clips are decoded on demand).
    """

    recipe: Recipe
    classes: list[str]
    source: str
    table: pd.DataFrame
    used: pd.DataFrame
    waves: list[np.ndarray] | None
    bad: pd.DataFrame
    duplicates: list[list[str]]

    def partition(self, val_mask: np.ndarray, quiet: bool = False) -> PreparedData:
        """Training and validation datasets: the used rows where `val_mask` is True validate.

        Args:
            val_mask: (len(used),) bool.
            quiet: no warning for classes without validation clips (a run that trains on
                everything on purpose).
        """
        recipe, classes, used, waves = self.recipe, self.classes, self.used, self.waves
        train_mask = ~np.asarray(val_mask, dtype=bool)
        missing = [c for c in classes if c not in set(used.loc[train_mask, "label"])]
        if missing:
            raise LabelError(f"{self.source}: class '{missing[0]}' has no readable training clips")
        no_val = [c for c in classes if c not in set(used.loc[~train_mask, "label"])]
        if no_val and not quiet:
            log.warning(
                "no validation clips for class(es) %s: their recall is not measured",
                ", ".join(no_val),
            )
        table = self.table
        train_rows = used[train_mask].reset_index(drop=True)
        train_waves = _subset(waves, train_mask)
        train_rows, train_waves, table, extra_bad = _semi_supervised(
            recipe, train_rows, train_waves, table
        )
        spec = clip_spec(recipe)
        views = resolve_objective(recipe).views
        bad = self.bad
        return PreparedData(
            classes=classes,
            train=ClipDataset(train_rows, classes, spec, train_waves, recipe.wave_augment, views),
            val=ClipDataset(
                used[~train_mask].reset_index(drop=True), classes, spec, _subset(waves, ~train_mask)
            ),
            split=table.drop(columns="_row"),
            bad=join_bad(bad, extra_bad) if len(extra_bad) else bad,
            duplicates=self.duplicates,
        )


def _subset(waves: list | None, mask: np.ndarray) -> list | None:
    return None if waves is None else [w for w, m in zip(waves, mask, strict=True) if m]


def load_labelled(
    recipe: Recipe,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> LabelledClips:
    """Read labels, find duplicates, split, and decode (or probe) every train/val clip.

    Args:
        recipe: the validated recipe.
        on_progress: called with the number of clips just processed (progress bars).
        on_total: called once with the number of clips to process.
    """
    table, source = read_label_table(recipe)
    classes = resolve_classes(table, recipe.data.classes, source)
    _check_something_to_learn(classes, recipe.data.background_label, source)
    duplicates = find_duplicates(table["file"])
    if duplicates:
        n_files = sum(len(g) for g in duplicates)
        log.warning(
            "%d audio files are byte-identical copies in %d set(s), e.g. %s; kept in one split",
            n_files,
            len(duplicates),
            " = ".join(duplicates[0]),
        )
    table = assign_splits(table, duplicates, recipe).reset_index(drop=True)
    table["_row"] = np.arange(len(table))  # follows rows through decoding and subsetting
    used = table[table["split"].isin(["train", "val"])].reset_index(drop=True)
    if not (used["split"] == "train").any():
        raise LabelError(f"{source}: the train split is empty")
    if not (used["split"] == "val").any():
        reason = no_validation_reason(used, recipe.data.val_fraction)
        raise LabelError(f"{source}: the val split is empty: {reason}")
    spec = clip_spec(recipe)
    if on_total is not None:
        on_total(len(used))
    if recipe.data.cache:
        waves, used_ok, bad = decode_all(used, spec, recipe.data.max_bad_fraction, on_progress)
    else:
        used_ok, bad = _probe_all(
            used, recipe.data.max_bad_fraction, on_progress, recipe.audio.channel
        )
        waves = None
    return LabelledClips(recipe, classes, source, table, used_ok, waves, bad, duplicates)


def _check_something_to_learn(classes: list[str], background: str, source: str) -> None:
    """Refuse a label table with no class to tell apart: a one-class model scores every clip
    as that class and reports a perfect (meaningless) UAR."""
    if classes == [background]:
        raise LabelError(
            f"{source}: every clip is labelled '{background}' (data.background_label): there is "
            "no class to detect; add clips of the classes to detect"
        )
    if len(classes) < 2:
        raise LabelError(
            f"{source}: every clip is labelled '{classes[0]}': a classifier needs two classes or "
            f"more; add clips of other classes, or of the background labelled '{background}'"
        )


def prepare_data(
    recipe: Recipe,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> PreparedData:
    """Read, split and decode the recipe's labelled clips into training and validation sets."""
    clips = load_labelled(recipe, on_progress, on_total)
    return clips.partition((clips.used["split"] == "val").to_numpy())


def _semi_supervised(
    recipe: Recipe,
    train: pd.DataFrame,
    waves: list | None,
    table: pd.DataFrame,
) -> tuple[pd.DataFrame, list | None, pd.DataFrame, pd.DataFrame]:
    """Withhold labels (data.labelled_per_class / labelled_fraction) and add unlabelled audio.

    Clips without a label are kept only for a loss that learns from them (clar); otherwise they
    are left out, with a log line saying so.

    Returns:
        (training rows, their cached waves or None, the split table with a `labelled` column,
         unreadable unlabelled files)
    """
    d = recipe.data
    unlabelled_used = uses_unlabelled(recipe)
    bad = bad_table([])
    table = table.copy()
    table["labelled"] = table["split"].isin(["train", "val"])
    if d.labelled_per_class is not None or d.labelled_fraction < 1.0:
        keep = withhold_labels(train, d.labelled_per_class, d.labelled_fraction, recipe.seed)
        log.info(
            "labels kept for %d of %d training clips (data.labelled_per_class=%s, "
            "labelled_fraction=%g)",
            int(keep.sum()),
            len(train),
            d.labelled_per_class,
            d.labelled_fraction,
        )
        table.loc[train.loc[~keep, "_row"].to_numpy(), "labelled"] = False
        if unlabelled_used:
            train = mark_unlabelled(train, keep)
        else:
            train = train[keep].reset_index(drop=True)
            waves = None if waves is None else [w for w, k in zip(waves, keep, strict=True) if k]
            log.info(
                "loss %s learns from labelled clips only: %d clips without labels left out",
                recipe.loss.name,
                int((~keep).sum()),
            )
    if d.unlabelled:
        if not unlabelled_used:
            log.warning(
                "data.unlabelled is ignored: loss %s learns from labelled clips only "
                "(use loss.name: clar, or distill.teachers)",
                recipe.loss.name,
            )
        else:
            windows, bad = unlabelled_windows(
                d.unlabelled, recipe.audio.clip_seconds, recipe.audio.channel
            )
            for kept, what in ((False, "skipped %d unreadable"), (True, "kept %d damaged")):
                rows = bad[bad["kept"] == kept]
                if len(rows):
                    log.warning(
                        what + " unlabelled file(s); first: %s", len(rows), rows["error"].iloc[0]
                    )
            log.info("%d unlabelled clips from %s", len(windows), ", ".join(d.unlabelled))
            train = pd.concat([train, windows], ignore_index=True)
            if waves is not None:
                waves = list(waves) + [None] * len(windows)  # decoded on demand
            table = pd.concat([table, windows.assign(labelled=False)], ignore_index=True)
    return train, waves, table, bad


def _probe_all(
    table: pd.DataFrame,
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None,
    channel: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Header check of every file when clips are not cached (cheap, catches most broken files),
    and a count of the NaN/Inf samples of each clip of a float file (the only files that can
    hold them; decoding them on demand later sets those samples to 0)."""
    readable, unreadable = probe_headers(table["file"], on_progress)
    errors = dict(zip(unreadable["file"], unreadable["error"], strict=True))
    rows, kept = [], []
    # One row per clip (a broken file cut into several clips loses each of them).
    for i, (_, row) in enumerate(table.iterrows()):
        file = str(row["file"])
        if file in errors:
            rows.append({"file": row["file"], "error": errors[file], "kept": False})
            continue
        start, end = row_times(row)
        try:
            check = check_finite(file, channel, start, end, info=readable[file])
        except AudioError as exc:
            rows.append({"file": row["file"], "error": str(exc), "kept": False})
            continue
        if check is not None and check.note:
            rows.append({"file": row["file"], "error": f"{file}: {check.note}", "kept": True})
        kept.append(i)
    bad = bad_table(rows)
    check_bad_fraction(bad, len(table), max_bad_fraction)
    return table.iloc[kept].reset_index(drop=True), bad
