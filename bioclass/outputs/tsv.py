"""Text fields for tab-separated files (Raven tables, Audacity labels, Raven's list file).

A tab or line break inside a field would shift every later column or start a new row, and the
readers (Raven, Audacity, crowsetta, OpenSoundscape) have no quoting. Such characters are
written as the two-character escapes `\\t`, `\\n`, `\\r`, and a warning names the value once.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_warned: set[str] = set()


def tsv_field(value: object, what: str) -> str:
    """`value` as a field of a tab-separated line; `what` names it in the warning (e.g. 'label')."""
    text = str(value)
    if not any(c in text for c in _ESCAPES):
        return text
    escaped = "".join(_ESCAPES.get(c, c) for c in text)
    if text not in _warned:
        _warned.add(text)
        log.warning(
            "the %s %r holds a tab or line break, which tab-separated tables cannot hold: "
            "written as %s",
            what,
            text,
            escaped,
        )
    return escaped
