"""Scanning files in parallel: a bounded queue of files in flight, results in input order.

Each file is one unit of work: its stored part when an earlier run finished it (see `journal`),
else decoded, scored and stored. A failure is reported, not stored, so a re-run tries again.
Results are consumed in input order whatever order the workers finish in, so progress and
outputs do not depend on the number of workers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bioclass.audio import AudioError
from bioclass.core.oserrors import os_error_reason
from bioclass.inference.score import FileScores, FileScoringError
from bioclass.scan.journal import file_key, load_part, save_result

T = TypeVar("T")
R = TypeVar("R")

ShouldStop = Callable[[], bool]
_END: Any = object()  # end of the item queue (items may be anything, even None)


@dataclass
class FileOutcome:
    """What happened to one file (the scores themselves stay on disk once counted)."""

    path: Path
    key: str | None
    result: FileScores | None = None
    error: str | None = None
    resumed: bool = False
    duration_s: float = 0.0
    note: str | None = None

    def __post_init__(self) -> None:
        if self.result is not None:
            self.duration_s = max((s.duration_s for s in self.result.streams), default=0.0)
            self.note = self.result.note

    def light(self) -> FileOutcome:
        """The same outcome without the score arrays (they are re-read from the part)."""
        return FileOutcome(
            self.path, self.key, None, self.error, self.resumed, self.duration_s, self.note
        )


def stored_outcome(path: Path, parts: Path, params: dict[str, Any]) -> FileOutcome | str:
    """A file's outcome when it needs no scoring (it cannot be read, or an earlier run stored
    its part), else its journal key: the file is to be scored and stored under that key."""
    try:
        key = file_key(path, params)
    except OSError as exc:
        return FileOutcome(path, None, error=f"{path}: cannot read file ({os_error_reason(exc)})")
    stored = load_part(parts, key)
    if stored is not None and all(np.isfinite(s.scores).all() for s in stored.streams):
        return FileOutcome(path, key, result=stored, resumed=True)
    # No part yet, or one holding NaN scores (stored before scans checked them): score it.
    return key


def score_or_resume(
    path: Path,
    parts: Path,
    params: dict[str, Any],
    score: Callable[[Path, ShouldStop], FileScores],
    should_stop: ShouldStop,
) -> FileOutcome:
    """One file's outcome: its stored part, or `score(path, should_stop)` stored as a part.

    Args:
        path: the recording.
        parts: the folder of stored parts.
        params: everything that changes the scores (part of the part's key).
        score: scores a file; raises AudioError for a file that cannot be decoded and
            FileScoringError for one whose scores are not finite (both: the file fails).
        should_stop: passed on to `score`, which abandons the file when it returns True.
    """
    known = stored_outcome(path, parts, params)
    if isinstance(known, FileOutcome):
        return known
    key = known
    try:
        result = score(path, should_stop)
    except (AudioError, FileScoringError) as exc:
        return FileOutcome(path, key, error=str(exc))
    save_result(parts, key, result)
    return FileOutcome(path, key, result=result)


def run_in_order(
    items: Iterable[T],
    work: Callable[[T, ShouldStop], R],
    workers: int,
    consume: Callable[[R], None],
    enough: Callable[[], bool] = lambda: False,
) -> None:
    """Run `work(item, should_stop)` on `workers` threads; `consume` the results in input order.

    At most `workers` items are in flight, so memory stays bounded however many items there are.
    `enough()` is asked before each result is awaited: once it is True no new item starts and the
    ones in flight finish (their work is kept, e.g. stored parts). Any exception, Ctrl-C included,
    makes `should_stop()` True so the items in flight give up at their next check, and is raised.
    """
    n_workers = max(1, workers)
    cancel = threading.Event()
    queue = iter(items)
    in_flight: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        try:
            while not enough():
                while len(in_flight) < n_workers:
                    item = next(queue, _END)
                    if item is _END:
                        break
                    in_flight.append(pool.submit(work, item, cancel.is_set))
                if not in_flight:
                    break
                consume(in_flight.popleft().result())
        except BaseException:
            cancel.set()
            raise
        finally:
            for future in in_flight:
                future.cancel()
