"""Recording start times from file names, in the conventions field recorders use.

Recognised (the first match in the file's name wins):
    AudioMoth, Song Meter, most others   [PREFIX_]YYYYMMDD_HHMMSS  (also `T` or `-` between)
    ISO-like                             YYYY-MM-DD[T _]HH[-:_]MM[-:_]SS
    AudioMoth legacy firmware            8 hex digits = Unix time (e.g. 5E90A4C0.WAV)

Times are returned as written (naive): AudioMoth writes UTC, Song Meters the configured local
time; bioclass does not guess the zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

_COMPACT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})[_T-](\d{2})(\d{2})(\d{2})(?!\d)")
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T _](\d{2})[-:_.]?(\d{2})[-:_.]?(\d{2})(?!\d)")
_HEX = re.compile(r"^[0-9A-F]{8}$")


def parse_timestamp(path: str | Path) -> datetime | None:
    """The recording's start time from its file name, or None when the name carries none."""
    name = Path(path).stem
    for pattern in (_COMPACT, _ISO):
        for match in pattern.finditer(name):
            try:
                return datetime(*(int(g) for g in match.groups()))
            except ValueError:
                continue  # e.g. 20241399_999999: digits, but not a date
    if _HEX.match(name):
        moment = datetime.fromtimestamp(int(name, 16), tz=timezone.utc).replace(tzinfo=None)
        if 2015 <= moment.year <= 2040:  # AudioMoth's era; other 8-hex names are not times
            return moment
    return None


def start_datetimes(path: str | Path, starts_s: Iterable[float]) -> list[str]:
    """ISO 8601 times (milliseconds) of moments `starts_s` seconds into the recording `path`,
    or empty strings when its name carries no start time (the `datetime` column)."""
    origin = parse_timestamp(path)
    if origin is None:
        return ["" for _ in starts_s]
    return [
        (origin + timedelta(seconds=float(s))).isoformat(timespec="milliseconds") for s in starts_s
    ]
