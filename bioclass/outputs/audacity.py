"""Audacity label tracks: the class alone as each label's text, the score in a second track.

Audacity's label files are `start<TAB>end<TAB>text` lines (File > Import > Labels); a line that
starts with `\\` would be read as the previous label's frequency range, so nothing else fits in
the file. The text is exactly the class name, so that every reader (Audacity, crowsetta,
OpenSoundscape) sees one label per class; the score goes to a second label track with the same
times, whose text is the score (and, for scans of separate channels, the channel).
"""

from __future__ import annotations

from collections.abc import Sequence

from bioclass.outputs.event import Event
from bioclass.outputs.tsv import tsv_field


def _sorted(events: Sequence[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.start_time)  # stable: ties keep the table's order


def audacity_labels(events: Sequence[Event]) -> str:
    """The label track: `start<TAB>end<TAB>class` per event (empty when there are none)."""
    return "".join(
        f"{row.start_time:.4f}\t{row.end_time:.4f}\t{tsv_field(row.label, 'label')}\n"
        for row in _sorted(events)
    )


def audacity_scores(events: Sequence[Event]) -> str:
    """The score track, line for line beside the label track: `start<TAB>end<TAB>0.93`, with
    ` ch1` appended for a scan of separate channels (channels counted from 0, as in the CSV)."""
    lines = []
    for row in _sorted(events):
        text = f"{row.score:.2f}"
        if row.channel is not None:
            text += f" ch{int(row.channel)}"
        lines.append(f"{row.start_time:.4f}\t{row.end_time:.4f}\t{text}\n")
    return "".join(lines)
