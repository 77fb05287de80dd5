"""What a scan did, counted file by file, for the terminal report and the manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bioclass.scan.work import FileOutcome

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class ScanSummary:
    """What a scan did, for the terminal and the manifest."""

    n_files: int = 0
    n_scanned: int = 0
    n_resumed: int = 0
    n_failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    n_detections: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    failed: list[dict[str, str]] = field(default_factory=list)  # file, error
    damaged: list[dict[str, str]] = field(default_factory=list)  # file, note (partly scanned)
    events: pd.DataFrame | None = None  # the detections, when options.collect_events

    def count(self, outcome: FileOutcome) -> None:
        """Add one file's outcome (and warn about a failed or damaged file)."""
        if outcome.error is not None:
            self.n_failed += 1
            self.failed.append({"file": str(outcome.path), "error": outcome.error})
            log.warning("skipped %s", outcome.error)
            return
        self.audio_seconds += outcome.duration_s
        self.n_resumed += int(outcome.resumed)
        self.n_scanned += int(not outcome.resumed)
        if outcome.note:
            self.damaged.append({"file": str(outcome.path), "note": outcome.note})
            log.warning("%s: %s", outcome.path, outcome.note)

    @property
    def all_failed(self) -> bool:
        """Whether there were files and not one could be scanned (the scan found nothing)."""
        return self.n_files > 0 and self.n_failed == self.n_files

    def too_many_failures(self, max_failures: int | None) -> bool:
        """Whether the scan should stop (--max-failures unreadable files reached)."""
        return max_failures is not None and self.n_failed >= max_failures
