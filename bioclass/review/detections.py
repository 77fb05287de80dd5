"""Reading the detections CSV `bioclass scan` writes (or any table with its first columns):
`file,start_time,end_time,label,score`, optionally `channel`; other columns are ignored."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bioclass.annotations.csv_table import read_header
from bioclass.annotations.errors import AnnotationValueError, where
from bioclass.annotations.table import check_times
from bioclass.annotations.text import csv_records, number
from bioclass.core.errors import BioclassError

REQUIRED = ("file", "start_time", "end_time", "label", "score")
DETECTION_COLUMNS = ["file", "start_time", "end_time", "label", "score", "channel", "row"]


def empty_detections() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series(dtype=object),
            "start_time": pd.Series(dtype=float),
            "end_time": pd.Series(dtype=float),
            "label": pd.Series(dtype=object),
            "score": pd.Series(dtype=float),
            "channel": pd.array([], dtype="Int64"),
            "row": pd.Series(dtype="int64"),
        }
    )


def read_detections(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """The detections of one CSV, in file order.

    Returns:
        (table with `DETECTION_COLUMNS`, whether the CSV has a channel column). `file` is as
        written (found later, against `--audio-root`); `row` is the CSV row (header = row 1).
        A file without a single row, or with only its header, gives an empty table: a scan that
        found nothing is a review with nothing in it, not an error.

    Raises:
        BioclassError: the file is missing; a column is missing (naming those there are); a
            cell is not a number, times out of order, an empty file or label (naming the row).
    """
    path = Path(path)
    if not path.is_file():
        raise BioclassError(f"detections CSV not found: {path}")
    if not csv_records(path):
        return empty_detections(), False
    _, columns, rows = read_header(path, REQUIRED)
    col = {name: columns.find(name) for name in (*REQUIRED, "channel")}
    records = []
    for row, cells in rows:
        file = cells[col["file"]]
        if not file:
            raise AnnotationValueError(f"{where(path, row)}: empty 'file'")
        label = cells[col["label"]]
        if not label:
            raise AnnotationValueError(f"{where(path, row)}: empty label")
        start = number(cells[col["start_time"]], path, row, "start_time")
        end = number(cells[col["end_time"]], path, row, "end_time")
        check_times(path, row, start, end, ("start_time", "end_time"))
        score = number(cells[col["score"]], path, row, "score")
        channel = None
        if col["channel"] is not None and cells[col["channel"]]:
            value = number(cells[col["channel"]], path, row, "channel")
            if value < 0 or value != int(value):
                raise AnnotationValueError(
                    f"{where(path, row)}: channel must be 0, 1, ... (counted from 0), "
                    f"got {cells[col['channel']]!r}"
                )
            channel = int(value)
        records.append((file, start, end, label, score, channel, row))
    if not records:
        return empty_detections(), col["channel"] is not None
    table = pd.DataFrame(records, columns=DETECTION_COLUMNS)
    table["channel"] = pd.array(table["channel"], dtype="Int64")
    return table, col["channel"] is not None
