"""The unlabelled archive of `bioclass pretrain`: every readable recording and its length.

Only headers are read here; patches are decoded later as seekable excerpts, so an archive of
thousands of hour-long files costs one table row per file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bioclass.audio.discover import collect_inputs
from bioclass.audio.probe import probe_headers
from bioclass.core.errors import BioclassError
from bioclass.data.clips import check_bad_fraction

log = logging.getLogger(__name__)


def index_archive(
    inputs: list[str | Path],
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find the audio files below `inputs` and read their lengths.

    Returns:
        (recordings: file, duration_s, sample_rate, channels; bad: file, error)

    Raises:
        BioclassError: nothing readable, or more than `max_bad_fraction` of the files broken.
    """
    files = collect_inputs([str(i) for i in inputs])
    readable, bad_table = probe_headers(files, on_progress)
    rows = [
        {
            "file": path,
            "duration_s": info.duration_seconds,
            "sample_rate": info.sample_rate,
            "channels": info.n_channels,
        }
        for path, info in readable.items()
    ]
    bad = bad_table.to_dict(orient="records")
    if not rows:
        first = f"; first: {bad[0]['error']}" if bad else ""
        raise BioclassError(f"no readable audio in {', '.join(map(str, inputs))}{first}")
    check_bad_fraction(len(bad), len(files), max_bad_fraction, bad_table)
    return pd.DataFrame(rows), bad_table
