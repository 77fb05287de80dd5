"""Reading a table's text: encodings, line endings, blank lines, and numeric cells, with every
line kept at the number a text editor shows so that messages can point at it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from bioclass.annotations.errors import AnnotationError, AnnotationValueError, where


def read_text(path: Path) -> str:
    """A table's text with a UTF-8 byte-order mark dropped and every line ending made LF."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read the table ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Raven and spreadsheets on Windows save in the system code page, not UTF-8; cp1252
        # covers Western European labels. Anything else is refused rather than guessed.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise AnnotationError(
                f"{path}: not a text file in UTF-8 or Windows-1252; save it as UTF-8 text"
            ) from None
    # Windows (CRLF) and old Mac (CR) endings; splitlines() would also split on form feeds
    # and Unicode separators inside labels, shifting the line numbers messages show.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a text file as (1-based line number, text), in order; blank lines
    (trailing ones included) are skipped but still counted."""
    lines = read_text(path).split("\n")
    return [(i + 1, line) for i, line in enumerate(lines) if line.strip()]


def csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """The non-empty records of a comma-separated file as (line number, stripped cells).

    The line number is the one the record ends on, which is the spreadsheet row for every record
    without a quoted line break.
    """
    reader = csv.reader(io.StringIO(read_text(path)))
    records = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                records.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise AnnotationError(f"{where(path, reader.line_num)}: cannot parse CSV ({exc})") from None
    return records


def number(value: str, path: Path, row: int, column: str) -> float:
    """A cell as a finite float; an error names the table, row and column otherwise."""
    text = value.strip()
    try:
        result = float(text)
    except ValueError:
        result = math.nan
    if math.isfinite(result):
        return result
    hint = ""
    if "," in text and _is_number(text.replace(",", ".")):
        hint = " (a decimal comma? use a point: 1.5, not 1,5)"
    shown = repr(text) if text else "an empty cell"
    raise AnnotationValueError(
        f"{where(path, row)}: {column} must be a number, got {shown}{hint}"
    ) from None


def optional_number(value: str, path: Path, row: int, column: str) -> float:
    """Like `number`, but an empty cell (or NA/NaN) is NaN: frequencies a box may lack."""
    if value.strip().lower() in ("", "na", "nan", "n/a", "none"):
        return math.nan
    return number(value, path, row, column)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
