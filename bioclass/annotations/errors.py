"""The errors an annotation table can raise: one line each, naming the table and the row."""

from __future__ import annotations

from pathlib import Path

from bioclass.core.errors import BioclassError


class AnnotationError(BioclassError):
    """An annotation table that cannot be used as it is."""


class AnnotationFormatError(AnnotationError):
    """The table's layout: unknown format, wrong separator, missing or unknown columns."""


class AnnotationValueError(AnnotationError):
    """A cell: a time or frequency that is not a number, out of order, negative, past the end."""


class AnnotationAudioError(AnnotationError):
    """The recording a table refers to cannot be found or read."""


class LabelMappingError(AnnotationError):
    """A label mapping that names labels the tables do not have, or maps to an empty name."""


def where(path: str | Path, row: int | None = None) -> str:
    """`table, row N` as the start of a message; rows count from 1 with the header as row 1,
    the line number a text editor or spreadsheet shows."""
    return f"{path}, row {row}" if row is not None else str(path)
