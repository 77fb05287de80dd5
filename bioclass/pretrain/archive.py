"""The unlabelled archive of `bioclass pretrain`: every readable recording and its length.

Only headers are read here, and the samples of float files (the only ones that can hold NaN or
Inf: a file all NaN/Inf is left out, one with some is kept and listed); patches are decoded
later as seekable excerpts, so an archive of thousands of hour-long files costs one table row
per file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bioclass.audio.discover import collect_inputs
from bioclass.audio.probe import join_bad, probe_headers, probe_samples
from bioclass.data.clips import TooManyBadFiles, check_bad_fraction

log = logging.getLogger(__name__)


def index_archive(
    inputs: list[str | Path],
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None = None,
    channel: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find the audio files below `inputs` and read their lengths.

    Args:
        channel: the channel pretraining reads (None: the mono mix), whose samples are checked.

    Returns:
        (recordings: file, duration_s, sample_rate, channels; bad: file, error, kept)

    Raises:
        TooManyBadFiles: nothing usable, or more than `max_bad_fraction` of the files broken
            (it carries the bad-files table).
    """
    files = collect_inputs([str(i) for i in inputs])
    readable, unreadable = probe_headers(files, on_progress)
    readable, damaged = probe_samples(readable, channel)
    bad_table = join_bad(unreadable, damaged)
    rows = [
        {
            "file": path,
            "duration_s": info.duration_seconds,
            "sample_rate": info.sample_rate,
            "channels": info.n_channels,
        }
        for path, info in readable.items()
    ]
    if not rows:
        first = f"; first: {bad_table['error'].iloc[0]}" if len(bad_table) else ""
        raise TooManyBadFiles(
            f"no readable audio in {', '.join(map(str, inputs))}{first}", bad_table
        )
    check_bad_fraction(bad_table, len(files), max_bad_fraction)
    return pd.DataFrame(rows), bad_table
