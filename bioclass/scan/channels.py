"""Refusing `--channels N` up front when no input has channel N.

Without this check every file would fail on its own and the scan would end with nothing but a
table of failures. Headers are read in input order until one file has the channel, so a scan
whose first file has it pays for one header read; only a scan that is about to fail reads them
all (as the scan itself would have).
"""

from __future__ import annotations

from pathlib import Path

from bioclass.audio import AudioError, audio_info
from bioclass.core.errors import BioclassError


def check_channel_exists(files: list[Path], channels: str | int) -> None:
    """Raise when `channels` is a channel index that no readable file in `files` has.

    Unreadable files are left to the scan, which lists them as failed; when no file can be read
    at all, there is nothing to compare with and the scan goes on to report the failures.
    """
    if not isinstance(channels, int):
        return
    seen: set[int] = set()
    for path in files:
        try:
            n_channels = audio_info(path).n_channels
        except AudioError:
            continue
        if n_channels > channels:
            return
        seen.add(n_channels)
    if seen:
        counts = " or ".join(str(n) for n in sorted(seen))
        raise BioclassError(
            f"--channels {channels}: no input file has a channel {channels} (0 = first); "
            f"the readable ones have {counts} channel(s)"
        )
