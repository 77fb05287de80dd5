"""Raven Pro selection tables: tab-separated text, one row per selection and view.

Header as Raven writes it: `Selection, View, Channel, Begin Time (s), End Time (s), Low Freq
(Hz), High Freq (Hz)`, then any measurements and the user's annotation columns. A table of one
recording gives times inside it; a table of several (a file sequence, or bioclass's scan table)
names each selection's file in `Begin Path` or `Begin File`, and its time inside that file in
`File Offset (s)` (`Begin Time (s)` then runs on across the files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bioclass.annotations.columns import Columns
from bioclass.annotations.errors import AnnotationFormatError, AnnotationValueError, where
from bioclass.annotations.locate import AudioLookup
from bioclass.annotations.table import (
    Annotations,
    Box,
    boxes_frame,
    check_band,
    check_times,
    fit_inside,
)
from bioclass.annotations.text import number, optional_number, read_lines

BEGIN, END = "Begin Time (s)", "End Time (s)"
LOW, HIGH = "Low Freq (Hz)", "High Freq (Hz)"
# The label column when none is named: Raven's usual annotation column, bioclass's own, and
# those of BirdNET's Raven tables.
LABEL_COLUMNS = ("Annotation", "Label", "Species", "Common Name")
OFFSET_COLUMNS = ("File Offset (s)", "File Offset")  # the second as some converters write it


@dataclass(frozen=True)
class _Row:
    row: int
    cells: list[str]
    begin: float
    end: float


def read_raven(
    path: str | Path,
    audio: str | Path | None = None,
    audio_root: str | Path | None = None,
    label_column: str | None = None,
    lookup: AudioLookup | None = None,
    rel_dir: Path | None = None,
) -> Annotations:
    """Boxes of one Raven selection table.

    Args:
        path: the `.txt` selection table.
        audio: the recording, for a table of one recording that does not name it.
        audio_root: where recordings are when the table's paths are not valid here, or its
            single recording is not beside it.
        label_column: the column holding labels; default the first of `LABEL_COLUMNS` present.
        lookup: shared across the tables of one read (header cache, same-name checks).
        rel_dir: the table's folder below a folder of tables, mirrored below `audio_root`.

    Raises:
        AnnotationError: naming the table and row, for any problem in it.
    """
    path = Path(path)
    lookup = lookup if lookup is not None else AudioLookup(audio_root)
    lines = read_lines(path)
    if not lines:
        raise AnnotationFormatError(
            f"{path}: empty; a Raven selection table starts with its header "
            f"(Selection, View, Channel, {BEGIN}, {END}, ...)"
        )
    header_row, header = lines[0]
    _check_separator(path, header_row, header)
    columns = Columns(path, header_row, header.split("\t"))
    begin_col, end_col = columns.require(BEGIN), columns.require(END)
    label_col = _label_column(columns, label_column)
    rows = _one_per_selection(
        path, columns, [_parse(path, columns, r, line, begin_col, end_col) for r, line in lines[1:]]
    )
    file_col = columns.find("Begin Path", "Begin File")
    offset_col = columns.find(*OFFSET_COLUMNS)
    named = sorted({_file_cell(columns, r) for r in rows} - {""}) if file_col is not None else []
    single: str | None = None
    if audio is not None:
        if len(named) > 1:
            raise AnnotationFormatError(
                f"{path}: names {len(named)} recordings in "
                f"'{columns.names[file_col]}'; an audio file is for a table of one recording: "
                "give audio_root instead"
            )
        single = lookup.given(audio, path)
    elif file_col is not None and offset_col is None and len(named) > 1:
        raise AnnotationFormatError(
            f"{where(path, header_row)}: selections in {len(named)} recordings but no "
            f"'{OFFSET_COLUMNS[0]}' column, so their times inside each recording are unknown; "
            "add the File Offset measurement in Raven and save the table again"
        )
    elif not named:  # no file column, or one left empty: the table of one recording
        single = lookup.beside(path, rel_dir)
    files: dict[str, None] = {}
    if single is not None:
        lookup.info(single, path, None)
        files[single] = None
    boxes = []
    for r in rows:
        boxes.append(_box(path, columns, r, label_col, offset_col, single, lookup))
        files.setdefault(boxes[-1].file, None)
    return Annotations(boxes_frame(boxes), {f: lookup.durations[f] for f in files})


def _check_separator(path: Path, row: int, header: str) -> None:
    if "\t" in header:
        return
    sep = next((s for s in (",", ";") if s in header), None)
    if sep is not None:
        raise AnnotationFormatError(
            f"{where(path, row)}: not tab-separated (the header is separated by {sep!r}); "
            "Raven selection tables are tab-separated text: save it again from Raven "
            "(File > Save Selection Table) or as tab-delimited text"
        )


def _label_column(columns: Columns, name: str | None) -> int:
    if name is not None:
        index = columns.find(name)
        if index is None:
            raise AnnotationFormatError(
                f"{where(columns.path, columns.row)}: no label column {name!r} "
                f"(columns: {columns.listing()})"
            )
        return index
    index = columns.find(*LABEL_COLUMNS)
    if index is None:
        raise AnnotationFormatError(
            f"{where(columns.path, columns.row)}: no label column (looked for "
            f"{', '.join(LABEL_COLUMNS)}; columns: {columns.listing()}); name the column "
            "holding the labels"
        )
    return index


def _parse(path: Path, columns: Columns, row: int, line: str, begin_col: int, end_col: int) -> _Row:
    cells = [c.strip() for c in line.split("\t")]
    width = len(columns.names)
    if len(cells) > width:
        if any(cells[width:]):
            raise AnnotationFormatError(
                f"{where(path, row)}: {len(cells)} cells but the header has {width} columns; "
                "is there a tab inside a cell?"
            )
        cells = cells[:width]  # trailing tabs some editors leave
    cells += [""] * (width - len(cells))
    begin = number(cells[begin_col], path, row, BEGIN)
    end = number(cells[end_col], path, row, END)
    return _Row(row, cells, begin, end)


def _one_per_selection(path: Path, columns: Columns, rows: list[_Row]) -> list[_Row]:
    """Raven lists a selection once per view (Waveform 1, Spectrogram 1, ...) under one
    Selection number: keep one row each, the spectrogram's (it carries the band drawn)."""
    sel_col, view_col = columns.find("Selection"), columns.find("View")
    if sel_col is None:
        return rows
    kept: dict[str, _Row] = {}
    for r in rows:
        key = r.cells[sel_col] or f"row {r.row}"  # an unnumbered row is a selection of its own
        first = kept.get(key)
        if first is None:
            kept[key] = r
            continue
        same = (
            abs(first.begin - r.begin) < 1e-9
            and abs(first.end - r.end) < 1e-9
            and _file_cell(columns, first) == _file_cell(columns, r)
        )
        if not same:
            # Two tables pasted together, most likely: dropping either would lose a box.
            raise AnnotationValueError(
                f"{where(path, r.row)}: selection {key} is listed again with other times or "
                f"file (first at row {first.row}); selection numbers must be unique: "
                "renumber the selections"
            )
        spectrogram_later = view_col is not None and (
            _is_spectrogram(r.cells[view_col]) and not _is_spectrogram(first.cells[view_col])
        )
        if spectrogram_later:
            kept[key] = r
    return sorted(kept.values(), key=lambda r: r.row)


def _is_spectrogram(view: str) -> bool:
    return view.casefold().startswith("spectrogram")


def _file_cell(columns: Columns, r: _Row) -> str:
    # Begin Path is the full path; Begin File only the name: the path when both are filled.
    for name in ("Begin Path", "Begin File"):
        index = columns.find(name)
        if index is not None and r.cells[index]:
            return r.cells[index]
    return ""


def _box(
    path: Path,
    columns: Columns,
    r: _Row,
    label_col: int,
    offset_col: int | None,
    single: str | None,
    lookup: AudioLookup,
) -> Box:
    label = r.cells[label_col]
    if not label:
        raise AnnotationValueError(
            f"{where(path, r.row)}: empty label in column '{columns.names[label_col]}'; "
            "label every selection or delete it"
        )
    check_times(path, r.row, r.begin, r.end, (BEGIN, END))
    low, high = _band_cell(path, columns, r, LOW), _band_cell(path, columns, r, HIGH)
    check_band(path, r.row, low, high, (LOW, HIGH))
    channel = _channel(path, columns, r)
    start, end = r.begin, r.end
    if offset_col is not None and (r.cells[offset_col] or single is None):
        # In a table of several recordings Begin Time runs on across them: only the offset
        # says where the selection is inside its own file.
        name = columns.names[offset_col]
        start = number(r.cells[offset_col], path, r.row, name)
        if start < 0:
            raise AnnotationValueError(f"{where(path, r.row)}: {name} {start:g} is negative")
        # Round off the float noise of offset + (end - begin): tables hold microseconds at most.
        end = round(start + (r.end - r.begin), 9)
    if single is not None:
        file = single
    else:
        _check_one_file(path, columns, r)
        file = lookup.named(_file_cell(columns, r), path, r.row)
    info = lookup.info(file, path, r.row)
    if channel is not None and channel >= info.n_channels:
        raise AnnotationValueError(
            f"{where(path, r.row)}: Channel {channel + 1}, but {file} has "
            f"{info.n_channels} channel(s)"
        )
    end = fit_inside(path, r.row, file, end, info.duration_seconds)
    return Box(file, start, end, label, low, high, channel, str(path), r.row)


def _band_cell(path: Path, columns: Columns, r: _Row, name: str) -> float:
    index = columns.find(name)
    return float("nan") if index is None else optional_number(r.cells[index], path, r.row, name)


def _channel(path: Path, columns: Columns, r: _Row) -> int | None:
    index = columns.find("Channel")
    if index is None or not r.cells[index]:
        return None
    value = number(r.cells[index], path, r.row, "Channel")
    if value < 1 or value != int(value):
        raise AnnotationValueError(
            f"{where(path, r.row)}: Channel must be 1, 2, ... (Raven counts from 1), "
            f"got {r.cells[index]!r}"
        )
    return int(value) - 1  # 0-based, as bioclass counts channels elsewhere


def _check_one_file(path: Path, columns: Columns, r: _Row) -> None:
    # A selection dragged across the boundary of two files of a sequence has no single file.
    for begin_name, end_name in (("Begin Path", "End Path"), ("Begin File", "End File")):
        b, e = columns.find(begin_name), columns.find(end_name)
        if b is not None and e is not None and r.cells[b] and r.cells[e]:
            if r.cells[b] != r.cells[e]:
                raise AnnotationValueError(
                    f"{where(path, r.row)}: the selection runs from {r.cells[b]} into "
                    f"{r.cells[e]}; split it at the boundary of the two files"
                )
            return
    if not _file_cell(columns, r):
        raise AnnotationValueError(
            f"{where(path, r.row)}: no file named in 'Begin Path' or 'Begin File'"
        )
