"""The run directory of `train` and `pretrain`: created new or empty, or reopened to resume.

Everything a run writes goes through here, atomically, so a run stopped at any moment leaves
complete files (the previous version, or none), never a half-written table or checkpoint. A
run that stops before it saved its first checkpoint leaves nothing at all (`kept_once_saved`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bioclass.checkpoint import CheckpointError, atomic_save, read_checkpoint
from bioclass.core.atomic import atomic_write_text, folder_error_reason
from bioclass.core.errors import BioclassError
from bioclass.runtime.interrupt import StoppedAtOnce

LAST = "last.pt"  # the full state of an unfinished run, for --resume
METRICS = "metrics.csv"  # one row per evaluation


@dataclass(frozen=True)
class RunDirectory:
    """A run's folder and the files in it.

    Attributes:
        path: the folder.
        fresh: it was new or empty when this run began, so everything in it is the run's own.
        made: this run made the folder (it did not exist).
    """

    path: Path
    fresh: bool = False
    made: bool = False

    @classmethod
    def create(cls, path: str | Path) -> RunDirectory:
        """A new run: the folder must not exist or be empty (a finished run is never mixed
        with a new one)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise BioclassError(
                f"{path} already holds files; choose another --out, or --resume {path}"
            )
        made = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = folder_error_reason(path, exc)
            raise BioclassError(f"cannot create the run directory {path}: {reason}") from None
        return cls(path, fresh=True, made=made)

    @classmethod
    def reopen(cls, path: str | Path) -> tuple[RunDirectory, dict[str, Any]]:
        """An interrupted run and its saved state (the `last.pt` checkpoint)."""
        path = Path(path)
        last = path / LAST
        if not last.is_file():
            raise BioclassError(f"nothing to resume: {last} not found")
        try:
            return cls(path), read_checkpoint(last)
        except CheckpointError as exc:
            raise BioclassError(f"cannot resume: {exc}") from None

    def resume_command(self, command: str) -> str:
        """The command line that continues this run."""
        return f"bioclass {command} --resume {self.path}"

    def has_checkpoint(self) -> bool:
        """Whether the run saved a checkpoint (anywhere in it: a cross-validated run keeps its
        state per fold)."""
        return self.path.is_dir() and any(self.path.rglob("*.pt"))

    @contextmanager
    def kept_once_saved(self, command: str) -> Iterator[RunDirectory]:
        """The body of `command` (train, pretrain) writing into this run.

        When the body fails (an error, Ctrl-C) before the run saved a checkpoint, what it wrote
        is removed: a new run's folder would otherwise hold a recipe and a split but nothing to
        resume, and the same --out would be refused. A folder that held files before the run
        began (a resumed run) is never touched. A second Ctrl-C, which stops at once, comes
        out as `StoppedAtOnce` saying how to go on.
        """
        try:
            yield self
        except BaseException as exc:
            saved = self.has_checkpoint()
            if self.fresh and not saved:
                self._remove_contents()
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, StoppedAtOnce):
                if saved:
                    advice = (
                        "the state of the last save is kept; continue with: "
                        f"{self.resume_command(command)}"
                    )
                else:
                    advice = "nothing was saved yet: run the same command again"
                raise StoppedAtOnce(advice) from None
            raise

    def _remove_contents(self) -> None:
        """Remove everything in the folder (and the folder when this run made it), as far as
        the file system allows: the error that stopped the run is what gets reported."""
        with contextlib.suppress(OSError):
            for target in [self.path] if self.made else list(self.path.iterdir()):
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()

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
