"""The run directory of `train` and `pretrain`: created new or empty, or reopened to resume.

Everything a run writes goes through here, atomically, so a run stopped at any moment leaves
complete files (the previous version, or none), never a half-written table or checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bioclass.checkpoint import CheckpointError, atomic_save, read_checkpoint
from bioclass.core import tempnames
from bioclass.core.atomic import atomic_write_text, check_output_folder
from bioclass.core.errors import BioclassError
from bioclass.core.oserrors import os_error_reason

LAST = "last.pt"  # the full state of an unfinished run, for --resume
METRICS = "metrics.csv"  # one row per evaluation


@dataclass(frozen=True)
class RunDirectory:
    """A run's folder and the files in it."""

    path: Path

    @classmethod
    def create(cls, path: str | Path) -> RunDirectory:
        """A new run: the folder must not exist or be empty (a finished run is never mixed
        with a new one), and must take files (checked now, before the run's work)."""
        path = Path(path)
        if path.is_dir():
            # What a run killed before its first file was complete left is not "files".
            tempnames.remove_stale(path)
            try:
                held = any(path.iterdir())
            except OSError as exc:
                reason = os_error_reason(exc)
                raise BioclassError(f"cannot read the run directory {path}: {reason}") from None
            if held:
                raise BioclassError(
                    f"{path} already holds files; choose another --out, or --resume {path}"
                )
        check_output_folder(path, "the run directory")
        return cls(path)

    @classmethod
    def reopen(cls, path: str | Path) -> tuple[RunDirectory, dict[str, Any]]:
        """An interrupted run and its saved state (the `last.pt` checkpoint)."""
        path = Path(path)
        last = path / LAST
        if not last.is_file():
            raise BioclassError(f"nothing to resume: {last} not found")
        check_output_folder(path, "the run directory")
        try:
            return cls(path), read_checkpoint(last)
        except CheckpointError as exc:
            raise BioclassError(f"cannot resume: {exc}") from None

    @classmethod
    def existing(cls, path: str | Path) -> RunDirectory:
        """A run folder to continue writing in (a cross-validated run's top folder), checked
        to take files."""
        check_output_folder(path, "the run directory")
        return cls(Path(path))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file of the run."""
        atomic_write_text(self.path / name, text)
        return self.path / name

    def write_table(self, name: str, frame: pd.DataFrame) -> Path:
        """Write a CSV table of the run."""
        return self.write_text(name, frame.to_csv(index=False))

    def save_checkpoint(self, name: str, checkpoint: dict[str, Any]) -> Path:
        """Write a checkpoint of the run."""
        atomic_save(checkpoint, self.path / name)
        return self.path / name
