"""Which stretches of which recordings were annotated: inside them, time outside every box is a
negative for every class; outside them nothing is known.

By default every recording a table covers was annotated from start to end. An explicit extent
table (CSV `file,start_time,end_time`, several rows per file allowed) says otherwise: the first
ten minutes of each night, or recordings that were listened to and had nothing to box.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bioclass.annotations.csv_table import located_interval, read_header
from bioclass.annotations.errors import AnnotationValueError, where
from bioclass.annotations.locate import AudioLookup
from bioclass.annotations.table import Annotations

EXTENT_COLUMNS = ["file", "start_time", "end_time"]


def whole_recordings(annotations: Annotations) -> pd.DataFrame:
    """Every covered recording from 0 to its end (`EXTENT_COLUMNS`)."""
    return pd.DataFrame(
        {
            "file": pd.Series(list(annotations.durations), dtype=object),
            "start_time": pd.Series([0.0] * len(annotations.durations), dtype=float),
            "end_time": pd.Series(list(annotations.durations.values()), dtype=float),
        }
    )


def read_extent(
    path: str | Path, audio_root: str | Path | None = None, lookup: AudioLookup | None = None
) -> pd.DataFrame:
    """An extent table, checked like an annotation table: `EXTENT_COLUMNS` plus `source` and
    `row` for messages. Relative paths are below `audio_root`, else beside the table."""
    path = Path(path)
    lookup = lookup if lookup is not None else AudioLookup(audio_root)
    _, columns, rows = read_header(path, tuple(EXTENT_COLUMNS))
    records = []
    for row, cells in rows:
        file, start, end, _ = located_interval(path, columns, row, cells, lookup)
        records.append((file, start, end, str(path), row))
    return pd.DataFrame(records, columns=[*EXTENT_COLUMNS, "source", "row"]).astype(
        {"file": object, "start_time": float, "end_time": float, "source": object, "row": "int64"}
    )


def annotated_extent(
    annotations: Annotations,
    extent: str | Path | pd.DataFrame | None = None,
    audio_root: str | Path | None = None,
) -> pd.DataFrame:
    """The annotated stretches, merged where they overlap, as `EXTENT_COLUMNS` rows.

    Args:
        annotations: the boxes read.
        extent: None (whole recordings), an extent table's path, or `read_extent`'s result.
        audio_root: for the extent table's relative paths.

    Raises:
        AnnotationValueError: a box on a recording the extent leaves out, or entirely outside
            its annotated stretches (a box may straddle a stretch's edge), naming the box's table
            and row.
    """
    if extent is None:
        return whole_recordings(annotations)
    if not isinstance(extent, pd.DataFrame):
        extent = read_extent(extent, audio_root)
    name = str(extent["source"].iloc[0]) if "source" in extent and len(extent) else "the extent"
    merged = _merge(extent)
    for box in annotations.boxes.itertuples(index=False):
        spans = merged.get(box.file)
        if spans is None:
            raise AnnotationValueError(
                f"{where(box.source, box.row)}: {box.file} has boxes but no rows in {name}; "
                "add the stretches of it that were annotated"
            )
        if not any(box.start_time < e and box.end_time > s for s, e in spans):
            raise AnnotationValueError(
                f"{where(box.source, box.row)}: the box {box.start_time:g}-{box.end_time:g} s "
                f"lies outside the annotated stretches of {box.file} in {name}; widen them or "
                "remove the box"
            )
    rows = [(f, s, e) for f, spans in merged.items() for s, e in spans]
    return pd.DataFrame(rows, columns=EXTENT_COLUMNS).astype(
        {"file": object, "start_time": float, "end_time": float}
    )


def _merge(extent: pd.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Per file (in first-seen order), its stretches sorted and joined where they overlap."""
    merged: dict[str, list[tuple[float, float]]] = {}
    for file, group in extent.groupby("file", sort=False):
        spans: list[tuple[float, float]] = []
        for s, e in sorted(zip(group["start_time"], group["end_time"], strict=True)):
            if spans and s <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], e))
            else:
                spans.append((float(s), float(e)))
        merged[str(file)] = spans
    return merged
