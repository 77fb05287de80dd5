"""Build and validate the label table from either layout: folder per class, or a CSV."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.audio import AUDIO_EXTENSIONS
from bioclass.audio.discover import find_audio_files
from bioclass.core.errors import BioclassError

# Names the ComParE corpora and common tools use for the validation part of a split column.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "devel": "val",
    "dev": "val",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


class LabelError(BioclassError):
    """A label table that does not describe usable training data."""


def labels_from_folders(root: str | Path) -> pd.DataFrame:
    """Label table from `root/<class>/**/<audio>`; the class is the first sub-folder's name."""
    root = Path(root)
    if not root.is_dir():
        raise LabelError(f"data folder not found: {root}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise LabelError(f"{root}: no class sub-folders (expected {root}/<class>/<audio files>)")
    rows = []
    for class_dir in class_dirs:
        files = find_audio_files(class_dir)
        if not files:
            raise LabelError(
                f"{class_dir}: class '{class_dir.name}' has no audio files "
                f"({', '.join(AUDIO_EXTENSIONS)})"
            )
        rows += [{"file": str(f), "label": class_dir.name} for f in files]
    return pd.DataFrame(rows)


def labels_from_csv(
    csv_path: str | Path, audio_root: str | Path | None = None, split: str | None = None
) -> pd.DataFrame:
    """Label table from a CSV with `file,label` and optional `split,group,start_time,end_time`.

    Relative paths in `file` are resolved against `audio_root`, else the CSV's folder. Missing
    files and malformed rows are reported with their row number (counting the header as row 1).
    With `split` (train, val or test), only that split's rows are read and checked: a run's
    `split.csv` lists its unlabelled windows (empty label) beside the clips to evaluate.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise LabelError(f"labels CSV not found: {csv_path}")
    try:
        # Strings throughout (labels like "1" stay labels); times are converted below.
        table = pd.read_csv(
            csv_path, dtype=str, skipinitialspace=True, keep_default_na=False, na_values=[""]
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LabelError(f"{csv_path}: cannot parse CSV ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    for column in ("file", "label"):
        if column not in table.columns:
            raise LabelError(
                f"{csv_path}: missing column '{column}' (found: {', '.join(table.columns)})"
            )
    if table.empty:
        raise LabelError(f"{csv_path}: no rows")
    table = _normalise_split(table, csv_path)
    if split is not None:
        if "split" not in table.columns:
            raise LabelError(f"{csv_path}: --split {split} given but the CSV has no 'split' column")
        table = table[table["split"] == split]  # the index keeps each row's place in the file
        if table.empty:
            raise LabelError(f"{csv_path}: no rows with split '{split}'")
    base = Path(audio_root) if audio_root else csv_path.parent
    table = table.copy()
    rows = table.index.to_numpy() + 2
    for row, file, label in zip(rows, table["file"], table["label"], strict=True):
        if not isinstance(file, str) or not file.strip():
            raise LabelError(f"{csv_path}, row {row}: empty 'file'")
        if not isinstance(label, str) or not label.strip():
            raise LabelError(f"{csv_path}, row {row}: empty 'label' for {file}")
    table["label"] = table["label"].str.strip()
    table["file"] = [
        str(p if (p := Path(f.strip())).is_absolute() else base / p) for f in table["file"]
    ]
    missing = [(r, f) for r, f in zip(rows, table["file"], strict=True) if not Path(f).is_file()]
    if missing:
        row, file = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LabelError(f"{csv_path}, row {row}: audio file not found: {file}{more}")
    _check_times(table, csv_path, rows)
    return table.reset_index(drop=True)


def _normalise_split(table: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """The `split` column as train/val/test (its aliases read), an unknown one refused."""
    if "split" not in table.columns:
        return table
    splits = table["split"].fillna("").astype(str).str.strip().str.lower()
    bad = [(i + 2, s) for i, s in enumerate(splits) if s not in SPLIT_ALIASES]
    if bad:
        raise LabelError(
            f"{csv_path}, row {bad[0][0]}: unknown split '{bad[0][1]}' "
            "(use train, devel/val or test)"
        )
    return table.assign(split=splits.map(SPLIT_ALIASES))


def _check_times(table: pd.DataFrame, csv_path: Path, rows: np.ndarray) -> None:
    has_start, has_end = "start_time" in table.columns, "end_time" in table.columns
    if has_start != has_end:
        raise LabelError(f"{csv_path}: give both start_time and end_time columns, or neither")
    if not has_start:
        return
    for column in ("start_time", "end_time"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() & table[column].notna().to_numpy())
        if bad.size:
            raise LabelError(
                f"{csv_path}, row {rows[bad[0]]}: {column} must be a number of seconds, "
                f"got {table[column].iloc[bad[0]]!r}"
            )
        table[column] = values
    both = table["start_time"].notna() & table["end_time"].notna()
    wrong = np.flatnonzero(both & (table["end_time"] <= table["start_time"]))
    if wrong.size:
        raise LabelError(f"{csv_path}, row {rows[wrong[0]]}: end_time must be after start_time")


def resolve_classes(table: pd.DataFrame, classes: list[str] | None, source: str) -> list[str]:
    """The ordered class list; every label must be in it and every class must have clips."""
    found = sorted(table["label"].unique())
    if classes is None:
        return found
    check_known_labels(table, classes, source)
    empty = [c for c in classes if c not in found]
    if empty:
        raise LabelError(f"{source}: class '{empty[0]}' (in data.classes) has no clips")
    return list(classes)


def check_known_labels(table: pd.DataFrame, classes: list[str], source: str) -> None:
    """Every label of the table must be one of `classes` (error names the first bad row)."""
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        label = unknown[0]
        row = int(np.flatnonzero(table["label"].to_numpy() == label)[0]) + 2
        close = difflib.get_close_matches(label, classes, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LabelError(
            f"{source}, row {row}: label '{label}' is not one of the classes "
            f"({', '.join(classes)}){hint}"
        )
