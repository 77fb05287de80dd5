"""Reading a filled `review.csv` back, checked, for the step that learns from it.

Every problem is one line naming the table and row (header = row 1): a missing column, a cell
that is not a number, a verdict that is neither yes, no nor a known class, two overlapping
detections of one recording whose verdicts contradict each other, and a clip or recording that
is not where the table says (with every path tried).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bioclass.annotations.columns import Columns
from bioclass.annotations.errors import (
    AnnotationAudioError,
    AnnotationFormatError,
    AnnotationValueError,
    where,
)
from bioclass.annotations.locate import AudioLookup
from bioclass.annotations.table import check_times
from bioclass.annotations.text import csv_records, number

# The table `bioclass review` writes and the training step reads back (here, below both).
REVIEW_COLUMNS = ["file", "start_time", "end_time", "label", "score", "clip", "verdict"]
YES, NO = "yes", "no"


def read_review(
    path: str | Path,
    classes: Iterable[str] | None = None,
    audio_root: str | Path | None = None,
    check_audio: bool = True,
) -> pd.DataFrame:
    """A review table, validated.

    Args:
        path: the `review.csv`.
        classes: the class names a verdict may give (a detection that is another class); default
            the labels of the table itself.
        audio_root: where the recordings are when the table's absolute paths are not valid here
            (looked for by name with up to two of its folders below it, as for annotation
            tables).
        check_audio: find every recording and clip (off: only the table is checked).

    Returns:
        One row per clip: `file` (the recording, absolute), `start_time`, `end_time`, `label`,
        `score`, `clip` (absolute), `verdict` (`yes`, `no`, a class name, or '' where nobody
        decided; a verdict naming the row's own label reads as `yes`, any case of yes/no is
        accepted), `channel` (`<NA>` when the table has none) and `row`.

    Raises:
        AnnotationError: one line naming the table and row.
    """
    path = Path(path)
    records = csv_records(path) if path.is_file() else None
    if records is None:
        raise AnnotationFormatError(f"review table not found: {path}")
    if not records:
        raise AnnotationFormatError(
            f"{path}: empty; a review table starts with its header ({','.join(REVIEW_COLUMNS)})"
        )
    header_row, header = records[0]
    columns = Columns(path, header_row, header)
    missing = [name for name in REVIEW_COLUMNS if columns.find(name) is None]
    if missing:
        raise AnnotationFormatError(
            f"{where(path, header_row)}: missing column(s) {', '.join(repr(m) for m in missing)} "
            f"(columns: {columns.listing()}); a review table has {','.join(REVIEW_COLUMNS)}"
        )
    col = {name: columns.find(name) for name in (*REVIEW_COLUMNS, "channel")}
    width = len(header)
    rows = [(row, (cells + [""] * width)[:width]) for row, cells in records[1:]]
    known = (
        set(classes)
        if classes is not None
        else {cells[col["label"]] for _, cells in rows if cells[col["label"]]}
    )
    lookup = AudioLookup(audio_root)
    out = []
    for row, cells in rows:
        start = number(cells[col["start_time"]], path, row, "start_time")
        end = number(cells[col["end_time"]], path, row, "end_time")
        check_times(path, row, start, end, ("start_time", "end_time"))
        score = number(cells[col["score"]], path, row, "score")
        label = cells[col["label"]]
        if not label:
            raise AnnotationValueError(f"{where(path, row)}: empty label")
        verdict = _verdict(cells[col["verdict"]], label, known, path, row)
        channel = _channel(cells, col["channel"], path, row)
        file, clip = cells[col["file"]], cells[col["clip"]]
        if not file:
            raise AnnotationValueError(f"{where(path, row)}: empty 'file'")
        if not clip:
            raise AnnotationValueError(f"{where(path, row)}: empty 'clip'")
        clip_path = Path(clip) if Path(clip).is_absolute() else path.parent / clip
        if check_audio:
            file = lookup.named(file, path, row)
            if not clip_path.is_file():
                raise AnnotationAudioError(
                    f"{where(path, row)}: clip not found: {clip!r} (tried {clip_path}); clips "
                    "are found relative to the review table: move the review folder whole"
                )
        out.append(
            (file, start, end, label, score, str(clip_path.resolve()), verdict, channel, row)
        )
    table = pd.DataFrame(
        out,
        columns=[*REVIEW_COLUMNS, "channel", "row"],
    ).astype({"start_time": float, "end_time": float, "score": float, "row": "int64"})
    table["channel"] = pd.array(table["channel"], dtype="Int64")
    check_contradictions(table, path)
    return table


def claims(label: str, verdict: str) -> tuple[set[str], set[str]]:
    """(classes the verdict says are there, classes it says are not): `yes` says the label is
    there, `no` that it is not, another class that that class is there instead of the label."""
    if verdict == YES:
        return {label}, set()
    if verdict == NO:
        return set(), {label}
    if verdict:
        return {verdict}, {label}
    return set(), set()


def check_contradictions(table: pd.DataFrame, path: Path) -> None:
    """Two overlapping detections of one recording (and channel) must not say of one class that
    it is there and that it is not.

    Raises:
        AnnotationValueError: naming both rows.
    """
    judged = table[table["verdict"] != ""]
    for _, group in judged.groupby("file", sort=False):
        ordered = group.sort_values(["start_time", "row"], kind="mergesort")
        active: list = []  # rows whose span may still overlap the next one's
        for row in ordered.itertuples(index=False):
            active = [a for a in active if a.end_time > row.start_time]
            present, absent = claims(row.label, row.verdict)
            for other in active:
                if not _same_channel(row.channel, other.channel):
                    continue
                other_present, other_absent = claims(other.label, other.verdict)
                clash = sorted((present & other_absent) | (absent & other_present))
                if clash:
                    first, second = sorted((row, other), key=lambda r: r.row)
                    raise AnnotationValueError(
                        f"{where(path, second.row)}: verdict {second.verdict!r} on "
                        f"{second.label} {second.start_time:g}-{second.end_time:g} s contradicts "
                        f"row {first.row} ({first.label} {first.start_time:g}-"
                        f"{first.end_time:g} s, verdict {first.verdict!r}): the two overlap in "
                        f"{Path(row.file).name} and disagree on whether {clash[0]} is there; "
                        "listen again and settle one"
                    )
            active.append(row)


def _same_channel(a: object, b: object) -> bool:
    # No channel means the mixed recording, which contains every channel's sounds.
    return pd.isna(a) or pd.isna(b) or int(a) == int(b)


def _verdict(text: str, label: str, known: set[str], path: Path, row: int) -> str:
    if text.casefold() in (YES, NO):
        return text.casefold()
    if text in ("", label):
        return YES if text else ""
    if text in known:
        return text
    choices = sorted({YES, NO} | known)
    close = difflib.get_close_matches(text, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AnnotationValueError(
        f"{where(path, row)}: verdict {text!r} is not yes, no or a class "
        f"({', '.join(sorted(known)) or 'none known'}){hint}"
    )


def _channel(cells: list[str], index: int | None, path: Path, row: int) -> int | None:
    if index is None or not cells[index]:
        return None
    value = number(cells[index], path, row, "channel")
    if value < 0 or value != int(value):
        raise AnnotationValueError(
            f"{where(path, row)}: channel must be 0, 1, ... (counted from 0), got {cells[index]!r}"
        )
    return int(value)
