"""The run's `bad_files.csv`: the files (or clips) a run left out or repaired, written whether
the run goes on or refuses because there are too many."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bioclass.core.console import console
from bioclass.core.errors import BioclassError
from bioclass.data.clips import TooManyBadFiles
from bioclass.runtime.rundir import BAD_FILES, RunDirectory


def write_bad_files(run: RunDirectory, bad: pd.DataFrame, unit: str = "clip") -> Path | None:
    """Write `bad` (file, error, kept) when it has rows, and say what was done in one line.

    Args:
        unit: what a row is, for the message ('clip' or 'file').
    """
    if not len(bad):
        return None
    path = run.write_table(BAD_FILES, bad)
    left_out, repaired = int((~bad["kept"]).sum()), int(bad["kept"].sum())
    parts = []
    if left_out:
        parts.append(f"{left_out} unreadable {unit}(s) skipped")
    if repaired:
        parts.append(f"{repaired} damaged {unit}(s) kept with their NaN/Inf samples set to 0")
    console.print(f"[yellow]{', '.join(parts)}: see {path}")
    return path


@contextmanager
def bad_files_on_refusal(run: RunDirectory) -> Iterator[None]:
    """Around reading the data: a refusal for too many bad files still writes the list of
    them, and the one-line error says where it is."""
    try:
        yield
    except TooManyBadFiles as exc:
        path = run.write_table(BAD_FILES, exc.bad)
        raise BioclassError(f"{exc} (all listed in {path})") from None
