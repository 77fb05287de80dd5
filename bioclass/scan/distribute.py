"""The seam between the scan procedure and an engine that scores its files elsewhere.

`runner.scan` owns everything that makes a scan a scan (the lock, the journal keys, the event
rules, the outputs, the manifest); a `Distributor` only replaces the local pool of threads that
turns files into stored parts (`work.run_in_order`): it must hand `consume` one outcome per
file, in input order, exactly as the local pool does, so the outputs cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from bioclass.inference.score import WindowOutput
from bioclass.inference.stream import WindowPlan
from bioclass.scan.options import ScanOptions
from bioclass.scan.work import FileOutcome


@dataclass(frozen=True)
class ScoreJob:
    """What every file of a scan is scored with, once the driver has resolved it."""

    plan: WindowPlan
    options: ScanOptions  # with the mode resolved (fast may have become exact)
    output: WindowOutput  # what the driver's models give per window (its kind, for checks)
    params: dict[str, Any]  # the journal key's parameters (see options.score_params)
    parts: Path  # the journal folder


class Distributor(Protocol):
    """Scores a scan's files on other processes or machines."""

    def start(self, model_paths: list[Path], options: ScanOptions) -> torch.device:
        """Start the workers (each loads the models once); the device they score on."""
        ...

    def run(
        self,
        files: list[Path],
        job: ScoreJob,
        consume: Callable[[FileOutcome], None],
        enough: Callable[[], bool],
    ) -> None:
        """Score `files` (or resume them from `job.parts`), storing each file's part, and
        `consume` their outcomes in input order until `enough()` is True before one."""
        ...

    def close(self) -> None:
        """Stop the workers (also after an error)."""
        ...
