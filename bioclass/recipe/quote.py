"""Values quoted in recipe messages, cut short, so an error line never grows with the value.

A recipe value can be a list of 100,000 paths or a string of megabytes; a message that echoed
it whole would be a wall of text (and building it would cost what the value costs). Every
recipe message that quotes a value goes through `quote`, which reads only as much of the value
as the cut needs.
"""

from __future__ import annotations

from collections.abc import Iterator

QUOTE_LIMIT = 80  # characters of a quoted value, the "…" included
_INT_BITS = 256  # integers longer than this are described, not written out


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters, the last one "…" when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters with "…".

    Identical to `repr` for values that fit. Containers are written piece by piece and the
    writing stops once the limit is passed, so a huge (or self-referencing) value costs no more
    than a short one.
    """
    pieces: list[str] = []
    size = 0
    for piece in _repr_pieces(value, limit):
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            break
    return shorten("".join(pieces), limit)


def _repr_pieces(value: object, limit: int) -> Iterator[str]:
    """`repr(value)` in pieces, lazily (the caller stops reading once it has enough)."""
    if isinstance(value, str | bytes):
        yield repr(value[: limit + 1])  # one more than fits: the cut shows it was cut
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        yield repr(value)
    elif isinstance(value, int):
        # repr of a huge int is slow, and refused beyond 4300 digits.
        bits = value.bit_length()
        yield repr(value) if bits <= _INT_BITS else f"<an integer of {bits} bits>"
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ", " if i else ""
            yield from _repr_pieces(key, limit)
            yield ": "
            yield from _repr_pieces(item, limit)
        yield "}"
    elif isinstance(value, list | tuple) or (isinstance(value, set) and value):
        brackets = "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
        yield brackets[0]
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _repr_pieces(item, limit)
        yield "," if isinstance(value, tuple) and len(value) == 1 else ""
        yield brackets[1]
    else:
        yield shorten(repr(value), limit + 1)
