"""Reading the headers of many files, keeping the readable ones and listing the others: the
one loop behind training's header check, unlabelled audio and pretraining archives."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from bioclass.audio.io import AudioError, AudioInfo, audio_info

BAD_COLUMNS = ["file", "error"]  # the bad-files table every command writes


def probe_headers(
    files: Iterable[str | Path], on_progress: Callable[[int], None] | None = None
) -> tuple[dict[str, AudioInfo], pd.DataFrame]:
    """Header of each distinct file, in the order given.

    Returns:
        (readable: file -> AudioInfo; bad: one row per unreadable file, with the reason)
    """
    readable: dict[str, AudioInfo] = {}
    bad: dict[str, str] = {}
    for file in files:
        key = str(file)
        if key not in readable and key not in bad:
            try:
                readable[key] = audio_info(key)
            except AudioError as exc:
                bad[key] = str(exc)
        if on_progress is not None:
            on_progress(1)
    rows = [{"file": f, "error": e} for f, e in bad.items()]
    return readable, pd.DataFrame(rows, columns=BAD_COLUMNS)
