"""What is evaluated against annotations: a detections CSV or a score matrix (from `bioclass
scan`, or any tool writing those columns), read and checked, with the scan manifest found beside
it for the model's classes and thresholds.

A model checkpoint is the third kind of source; scanning it is the commands' job (the
evaluation floor does not import the scanner), after which it is a detections CSV with its
manifest and score matrix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError
from bioclass.outputs.writers import output_paths

MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")
PARQUET_SUFFIXES = (".parquet", ".pq")
DETECTION_COLUMNS = ("file", "start_time", "end_time", "label")
SCORE_KEY_COLUMNS = ("file", "channel", "start_time", "end_time")


class SourceError(BioclassError):
    """A detections CSV, score matrix or manifest that cannot be evaluated as it is."""


@dataclass(frozen=True)
class EvaluationInputs:
    """A source, read: the detections, the window scores when there are any, and what the
    model behind them says (classes, background class, thresholds) when that is known.

    Attributes:
        source: the path given, for messages and the report.
        kind: 'model', 'detections' or 'scores'.
        detections: file, start_time, end_time, label, score (NaN when the table has none).
        scores: the score matrix (file, channel, start_time, end_time, one column per class),
            or None: then there is no window level.
        classes: the model's classes in output order, or None when nothing says (a detections
            CSV without its manifest).
        background_label: the model's "no species" class, never evaluated.
        thresholds: per class, the threshold the detections (and the window decisions) used.
        threshold_origin: where the thresholds came from, for the report.
        notes: what could not be done with this source, and why (reported as skips).
        written: the classes the scan wrote labels of, when its `--classes` /
            `--exclude-classes` left some out (from its manifest); None: every class. Only
            these are evaluated: the others were never looked for.
        top_n: the scan's `--top-n` (labels per window), None when it wrote its top class.
    """

    source: str
    kind: str
    detections: pd.DataFrame
    scores: pd.DataFrame | None = None
    classes: list[str] | None = None
    background_label: str = "background"
    thresholds: dict[str, float] | None = None
    threshold_origin: str = ""
    notes: list[str] = field(default_factory=list)
    written: list[str] | None = None
    top_n: int | None = None


def source_kind(path: Path) -> str:
    """'model', 'detections' or 'scores', from the suffix and (for CSV) the header."""
    if not path.exists():
        raise SourceError(f"not found: {path}")
    if path.is_dir():
        raise SourceError(
            f"{path} is a folder; give a detections CSV, a score matrix (.parquet/.csv from "
            "scan --scores) or a model checkpoint (.pt)"
        )
    suffix = path.suffix.lower()
    if suffix in MODEL_SUFFIXES:
        return "model"
    if suffix in PARQUET_SUFFIXES:
        return "scores"
    columns = set(_header(path))
    if {"file", "start_time", "end_time"} <= columns and "label" not in columns:
        return "scores"
    if columns & set(DETECTION_COLUMNS):
        return "detections"  # read_detections names what is missing
    raise SourceError(
        f"{path}: neither a detections CSV (file,start_time,end_time,label[,score]) nor a "
        f"score matrix (file,channel,start_time,end_time,<class>...); its columns are "
        f"{', '.join(sorted(columns)) or 'none'}"
    )


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            line = f.readline()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    if not line.strip():
        raise SourceError(f"{path}: empty file, not a detections CSV or score matrix")
    return [c.strip() for c in line.rstrip("\n").split(_separator(line))]


def _separator(line: str) -> str:
    # bioclass writes commas; a spreadsheet may have saved tabs or semicolons.
    return max((",", "\t", ";"), key=line.count)


def _read_csv(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        sep = _separator(f.readline())
    try:
        return pd.read_csv(
            path,
            sep=sep,
            dtype={c: str for c in text_columns},
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: cannot parse the table ({first})") from None


def _numbers(table: pd.DataFrame, column: str, path: Path, allow_empty: bool = False) -> np.ndarray:
    """A column as floats; the first cell that is not a number is an error naming its row
    (empty cells are NaN where `allow_empty`)."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    empty = (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()
    bad = np.isnan(values) & ~empty if allow_empty else np.isnan(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        unit = " (seconds)" if column != "score" else ""
        raise SourceError(f"{path}, row {i + 2}: {column} {raw.iloc[i]!r} is not a number{unit}")
    return values


def read_detections(path: Path) -> pd.DataFrame:
    """A detections CSV, checked: `file, start_time, end_time, label`, optional `score` and
    `channel`; other columns are kept out.

    Raises:
        SourceError: a missing column, a time or score that is not a number, an end not after
            its start, an empty file name or label, naming the row (header = row 1).
    """
    table = _read_csv(path, ("file", "label"))
    missing = [c for c in DETECTION_COLUMNS if c not in table.columns]
    if missing:
        raise SourceError(
            f"{path}: a detections CSV needs the columns {','.join(DETECTION_COLUMNS)} "
            f"(missing: {', '.join(missing)}; found: {', '.join(map(str, table.columns))})"
        )
    start = _numbers(table, "start_time", path)
    end = _numbers(table, "end_time", path)
    wrong = end <= start
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise SourceError(
            f"{path}, row {i + 2}: end_time {end[i]:g} is not after start_time {start[i]:g}"
        )
    for column in ("file", "label"):
        empty = (table[column].str.strip() == "").to_numpy()
        if empty.any():
            raise SourceError(f"{path}, row {int(np.flatnonzero(empty)[0]) + 2}: empty {column}")
    score = (
        _numbers(table, "score", path, allow_empty=True)
        if "score" in table.columns
        else np.full(len(table), np.nan)
    )
    channel = (
        pd.to_numeric(table["channel"].replace("", np.nan), errors="coerce").astype("Int64")
        if "channel" in table.columns
        else pd.array([pd.NA] * len(table), dtype="Int64")
    )
    return pd.DataFrame(
        {
            "file": table["file"].str.strip().astype(object),
            "channel": channel,
            "start_time": start,
            "end_time": end,
            "label": table["label"].str.strip().astype(object),
            "score": score,
        }
    )


def read_score_matrix(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A score matrix (`scan --scores`): the table and its class columns, in order.

    Raises:
        SourceError: an unreadable file, missing key columns, no class column, or a class
            column that is not numeric.
    """
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a file that is not Parquet
            raise SourceError(f"{path}: cannot read the Parquet file ({exc})") from None
    else:
        table = _read_csv(path, ("file",))
    missing = [c for c in ("file", "start_time", "end_time") if c not in table.columns]
    if missing:
        raise SourceError(
            f"{path}: a score matrix needs the columns file,channel,start_time,end_time and one "
            f"column per class (missing: {', '.join(missing)})"
        )
    classes = [c for c in table.columns if c not in SCORE_KEY_COLUMNS]
    if not classes:
        raise SourceError(f"{path}: a score matrix needs one score column per class; none found")
    for c in classes:
        if not pd.api.types.is_numeric_dtype(table[c]):
            raise SourceError(
                f"{path}: column {c!r} is not numeric; a score matrix holds file,channel,"
                "start_time,end_time and one numeric score column per class"
            )
    frame = pd.DataFrame(
        {
            "file": table["file"].astype(str).astype(object),
            "channel": (
                pd.to_numeric(table["channel"], errors="coerce").astype("Int64")
                if "channel" in table.columns
                else pd.array([pd.NA] * len(table), dtype="Int64")
            ),
            "start_time": _numbers(table, "start_time", path),
            "end_time": _numbers(table, "end_time", path),
        }
    )
    for c in classes:
        frame[c] = table[c].to_numpy(dtype=np.float64)
    return frame, classes


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the scan manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("classes"), list):
        raise SourceError(f"{path}: not a bioclass scan manifest (no 'classes' list)")
    return manifest


def manifest_beside_detections(path: Path) -> tuple[dict[str, Any] | None, Path]:
    """The manifest `bioclass scan` wrote beside this detections CSV, if it is there."""
    where = output_paths(path)["manifest"]
    return (read_manifest(where) if where.is_file() else None), where


def manifest_of_scores(path: Path) -> dict[str, Any] | None:
    """A manifest in the score matrix's folder whose scan wrote this matrix, if any."""
    target = path.resolve()
    for candidate in sorted(path.parent.glob("*.manifest.json")):
        try:
            manifest = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # another tool's JSON: not ours to judge here
        if not isinstance(manifest, dict) or not isinstance(manifest.get("classes"), list):
            continue
        named = (manifest.get("outputs") or {}).get("scores") or manifest.get("scores_path")
        if named and Path(named).resolve() == target:
            return manifest
    return None


def scores_named_by(manifest: dict[str, Any]) -> Path | None:
    named = (manifest.get("outputs") or {}).get("scores") or manifest.get("scores_path")
    return Path(named) if named else None
