"""Progress as plain log lines, for a scan whose stderr is a log file rather than a terminal.

A progress bar draws nothing useful into a file (it is redrawn in place); a line about every
INTERVAL_S seconds tells whoever reads the log how far a long scan has got.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_S = 60.0


class ProgressLog:
    """Called after each file (path, audio seconds); logs one line when `interval_s` has passed.

    Args:
        total: files in the scan.
        interval_s: seconds between lines (default INTERVAL_S).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        total: int,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.interval_s = INTERVAL_S if interval_s is None else interval_s
        self.clock = clock
        self.started = self.last = clock()
        self.done = 0
        self.audio_seconds = 0.0

    def __call__(self, path: Path, seconds: float) -> None:
        self.done += 1
        self.audio_seconds += seconds
        now = self.clock()
        if now - self.last < self.interval_s:
            return
        self.last = now
        elapsed = now - self.started
        log.info(
            "scan progress: %d/%d files, %.2f h of audio in %.1f min (%.0fx real time)",
            self.done,
            self.total,
            self.audio_seconds / 3600,
            elapsed / 60,
            self.audio_seconds / max(elapsed, 1e-9),
        )
