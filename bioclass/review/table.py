"""The review's two tables: `review.csv` (one row per clip, the verdict left for the listener)
and a Raven Pro selection table that plays the clips one after another.

The Raven table uses Raven's multi-file layout, as `bioclass scan` does: the clips are a file
sequence, `Begin Time (s)` runs on across them in table order (each clip advances the timeline
by its length), `Begin Path` and `Begin File` name the clip and `File Offset (s)` is the time
inside it. Each selection is the detection itself, so the padding around it is context heard
before and after the box. Table order is the clips' file-name order (class folder, then rank),
the order a file sequence of them is opened in.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from bioclass.annotations.review import REVIEW_COLUMNS
from bioclass.outputs.raven import RAVEN_BOX_COLUMNS

RAVEN_COLUMNS = [
    *RAVEN_BOX_COLUMNS,
    "Begin Path",
    "Begin File",
    "File Offset (s)",
    "Label",
    "Score",
    "Rank",
    "Recording",
    "Recording Time (s)",
]
TIME_DECIMALS = 4  # as the detections CSV
SCORE_DECIMALS = 4


def review_columns(with_channel: bool) -> list[str]:
    """`REVIEW_COLUMNS`, with `channel` before `clip` for a scan of separate channels."""
    if not with_channel:
        return list(REVIEW_COLUMNS)
    return [*REVIEW_COLUMNS[:5], "channel", *REVIEW_COLUMNS[5:]]


def review_csv_text(review: pd.DataFrame, with_channel: bool) -> str:
    """`review.csv`: the clips in listening order, `clip` relative to the review folder."""
    columns = review_columns(with_channel)
    table = review.reindex(columns=columns).copy()
    for name in ("start_time", "end_time"):
        table[name] = table[name].astype(float).round(TIME_DECIMALS)
    table["score"] = table["score"].astype(float).round(SCORE_DECIMALS)
    if with_channel:
        table["channel"] = pd.array(table["channel"], dtype="Int64")
    table["verdict"] = table["verdict"].fillna("")
    out = io.StringIO()
    table.to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


def raven_table_text(review: pd.DataFrame) -> str:
    """The selection table of the clips, one selection per clip, in the review's order.

    `review` needs `clip_path` (absolute), `clip_start` (s in the recording), `clip_seconds`,
    `sample_rate` and the detection's `file`, `start_time`, `end_time`, `label`, `score`, `rank`.
    """
    lines = ["\t".join(RAVEN_COLUMNS)]
    timeline = 0.0  # where the current clip starts in Raven's concatenated sequence
    for i, row in enumerate(review.itertuples(index=False), start=1):
        # Clamped: the clip starts on a whole frame, up to half a frame after a detection that
        # starts at the clip's edge (no padding, or a detection at 0 s).
        begin = max(0.0, row.start_time - row.clip_start)
        end = min(row.end_time - row.clip_start, row.clip_seconds)
        cells = [
            i,
            "Spectrogram 1",
            1,  # a clip of one channel, or the selection spans them all: Raven counts from 1
            _time(timeline + begin),
            _time(timeline + end),
            0.0,
            round(row.sample_rate / 2, 1),
            str(row.clip_path),
            Path(row.clip_path).name,
            _time(begin),
            row.label,
            round(float(row.score), SCORE_DECIMALS),
            row.rank,
            row.file,
            _time(row.start_time),
        ]
        lines.append("\t".join(_cell(c) for c in cells))
        timeline += row.clip_seconds
    return "".join(line + "\n" for line in lines)


def _time(seconds: float) -> float:
    return round(float(seconds), TIME_DECIMALS)


def _cell(value: object) -> str:
    # A tab or line break inside a cell would shift every later column of the row.
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")
