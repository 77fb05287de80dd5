"""The detection record every scan output is written from.

Plain tuples, not a pandas table: a scan's outputs are built from these, and pandas' import (a
quarter of torch's) would otherwise be part of every scan's start-up. The Python API and the
evaluations take them as a pandas table (`events_frame`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pandas as pd


class Event(NamedTuple):
    """One detection: an event, or a labelled window without merging (channel None: the mix,
    else counted from 0)."""

    file: str
    channel: int | None
    start_time: float
    end_time: float
    label: str
    score: float  # the highest window score of the event's label
    mean_score: float
    n_windows: int


EVENT_COLUMNS = list(Event._fields)


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The events as a pandas table in EVENT_COLUMNS; an empty table keeps the columns."""
    import pandas as pd

    return pd.DataFrame(list(events), columns=EVENT_COLUMNS)
