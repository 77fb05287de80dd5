"""Finding a table's columns by name: exactly as written first, then ignoring case and spaces
around the name (hand-edited tables drift: `annotation`, ` Label`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bioclass.annotations.errors import AnnotationFormatError, where


class Columns:
    """The header of one table, for lookups whose errors name the table and its header row."""

    def __init__(self, path: Path, row: int, names: Sequence[str]) -> None:
        self.path, self.row = path, row
        self.names = [n.strip() for n in names]

    def find(self, *names: str) -> int | None:
        """Index of the first of `names` the header has, or None."""
        for name in names:
            if name in self.names:
                return self.names.index(name)
        folded = [n.casefold() for n in self.names]
        for name in names:
            if name.casefold() in folded:
                return folded.index(name.casefold())
        return None

    def require(self, name: str, what: str = "") -> int:
        """Index of a column the table must have."""
        index = self.find(name)
        if index is None:
            raise AnnotationFormatError(
                f"{where(self.path, self.row)}: missing column {name!r}{what} "
                f"(columns: {self.listing()})"
            )
        return index

    def listing(self) -> str:
        return ", ".join(repr(n) for n in self.names if n) or "none"
