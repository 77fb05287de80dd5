"""One entry point for annotation tables: files or folders of them, in any of the formats,
recognised by extension and content, read into one `Annotations`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bioclass.annotations.audacity import read_audacity
from bioclass.annotations.csv_table import read_csv_table
from bioclass.annotations.errors import AnnotationError, AnnotationFormatError, where
from bioclass.annotations.locate import AudioLookup
from bioclass.annotations.raven import read_raven
from bioclass.annotations.table import Annotations, concat
from bioclass.annotations.text import read_lines

FORMATS = ("raven", "audacity", "csv")
TABLE_EXTENSIONS = (".txt", ".csv", ".tsv")  # what a folder of tables is searched for
# A label line's first cell; a decimal comma too, so that its reader can say what is wrong.
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def read_annotations(
    paths: str | Path | Sequence[str | Path],
    audio_root: str | Path | None = None,
    label_column: str | None = None,
    audio: str | Path | None = None,
    table_format: str | None = None,
) -> Annotations:
    """Read annotation tables into one `Annotations`.

    Args:
        paths: tables, or folders searched recursively for `.txt`, `.csv` and `.tsv` tables.
        audio_root: folder the recordings are under, when the tables' own paths are not valid
            here or the recordings are not beside the tables; below it, a table found in a
            sub-folder of a given folder is also matched in the same sub-folder.
        label_column: Raven tables' label column (default: Annotation, Label, Species or
            Common Name, the first present).
        audio: the recording of a single table that does not name it (Raven of one recording,
            Audacity labels).
        table_format: 'raven', 'audacity' or 'csv' for every table; default: recognised per
            table (`.csv` is CSV; otherwise a Raven header, Audacity label lines, or a CSV
            header on the first line).

    Raises:
        AnnotationError: one line naming the table (and row) and what to fix.
    """
    if table_format is not None and table_format not in FORMATS:
        raise AnnotationError(
            f"unknown annotation format {table_format!r}; use one of {', '.join(FORMATS)}"
        )
    tables = find_tables([paths] if isinstance(paths, (str, Path)) else list(paths))
    if audio is not None and len(tables) != 1:
        raise AnnotationError(
            f"an audio file belongs to one table, but {len(tables)} were given; "
            "use audio_root, or tables that name their recordings"
        )
    lookup = AudioLookup(audio_root)
    parts = []
    for table, rel_dir in tables:
        kind = table_format or detect_format(table)
        if kind == "raven":
            part = read_raven(
                table, audio, label_column=label_column, lookup=lookup, rel_dir=rel_dir
            )
        elif kind == "audacity":
            part = read_audacity(table, audio, lookup=lookup, rel_dir=rel_dir)
        else:
            if audio is not None:
                raise AnnotationError(
                    f"{table}: a CSV table names its recordings in its 'file' column; "
                    "give audio_root, not an audio file"
                )
            part = read_csv_table(table, lookup=lookup)
        parts.append(part)
    return concat(parts)


def find_tables(paths: list[str | Path]) -> list[tuple[Path, Path | None]]:
    """Each table once, as (path, folder relative to the given folder it was found in)."""
    if not paths:
        raise AnnotationError("no annotation tables given")
    found: dict[Path, Path | None] = {}
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            tables = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in TABLE_EXTENSIONS
                and not p.name.startswith(".")
                and p.is_file()
            )
            if not tables:
                raise AnnotationError(
                    f"{path}: no annotation tables in this folder ({', '.join(TABLE_EXTENSIONS)})"
                )
            for table in tables:
                found.setdefault(table.resolve(), table.parent.relative_to(path))
        elif path.is_file():
            found.setdefault(path.resolve(), None)
        else:
            raise AnnotationError(f"annotation table not found: {path}")
    return list(found.items())


def detect_format(path: Path) -> str:
    """'raven', 'audacity' or 'csv', from the extension and the first non-blank line."""
    if path.suffix.lower() == ".csv":
        return "csv"
    lines = read_lines(path)
    if not lines:
        return "audacity"  # bioclass writes an empty label file for a recording without calls
    row, first = lines[0]
    cells = [c.strip().casefold() for c in re.split(r"[\t,;]", first)]
    if "begin time (s)" in cells or cells[0] == "selection":
        return "raven"  # a comma-separated one is refused by the Raven reader, with the reason
    token = first.split()[0]  # also the first of space- or comma-separated numbers
    if cells[0] == "\\" or _NUMBER.match(token) or _NUMBER.match(re.split(r"[,;]", token)[0]):
        return "audacity"
    if {"start_time", "end_time"} <= set(cells):
        return "csv"
    raise AnnotationFormatError(
        f"{where(path, row)}: cannot tell the table's format from this line; expected a Raven "
        "selection table header (Selection, View, Channel, Begin Time (s), ...), Audacity labels "
        "(start<TAB>end<TAB>label) or a CSV header (file,start_time,end_time,label)"
    )
