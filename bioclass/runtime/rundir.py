"""The run directory of `train` and `pretrain`: created new or empty, or reopened to resume.

Everything a run writes goes through here, atomically, so a run stopped at any moment leaves
complete files (the previous version, or none), never a half-written table or checkpoint. A
run that stops before it saved its first checkpoint leaves nothing at all (`kept_once_saved`).
With several ranks (torchrun) only rank 0 writes: on the others writing is a no-op, so every
file is written once whoever asks.
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
from bioclass.core import tempnames
from bioclass.core.atomic import atomic_write_text, check_output_folder
from bioclass.core.errors import BioclassError
from bioclass.core.oserrors import os_error_reason
from bioclass.runtime import distributed
from bioclass.runtime.interrupt import StoppedAtOnce

LAST = "last.pt"  # the full state of an unfinished run, for --resume
METRICS = "metrics.csv"  # one row per evaluation
BAD_FILES = "bad_files.csv"  # the files a run left out or repaired
# What a run that failed before its first checkpoint leaves for the user to read: the list of
# the files that made it refuse. It does not make the folder "hold files" for a re-run.
KEPT_AFTER_FAILURE = frozenset({BAD_FILES})


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
        with a new one), and must take files (checked now, before the run's work)."""
        path = Path(path)
        made = not path.exists()
        if path.is_dir():
            # What a run killed before its first file was complete left is not "files".
            tempnames.remove_stale(path)
            try:
                held = any(p.name not in KEPT_AFTER_FAILURE for p in path.iterdir())
            except OSError as exc:
                reason = os_error_reason(exc)
                raise BioclassError(f"cannot read the run directory {path}: {reason}") from None
            if held:
                raise BioclassError(
                    f"{path} already holds files; choose another --out, or --resume {path}"
                )
        check_output_folder(path, "the run directory")
        return cls(path, fresh=True, made=made)

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

    def resume_command(self, command: str) -> str:
        """The command line that continues this run (under torchrun, on as many ranks)."""
        return f"{distributed.launch_command()} {command} --resume {self.path}"

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
        """Remove everything in the folder but `KEPT_AFTER_FAILURE` (and the folder when this
        run made it and nothing is kept), as far as the file system allows: the error that
        stopped the run is what gets reported."""
        with contextlib.suppress(OSError):
            kept = [p for p in self.path.iterdir() if p.name in KEPT_AFTER_FAILURE]
            whole = self.made and not kept
            targets = [self.path] if whole else [p for p in self.path.iterdir() if p not in kept]
            for target in targets:
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file of the run (rank 0 only)."""
        if not distributed.current().is_main:
            return self.path / name
        atomic_write_text(self.path / name, text)
        return self.path / name

    def write_table(self, name: str, frame: pd.DataFrame) -> Path:
        """Write a CSV table of the run."""
        return self.write_text(name, frame.to_csv(index=False))

    def save_checkpoint(self, name: str, checkpoint: dict[str, Any]) -> Path:
        """Write a checkpoint of the run (rank 0 only)."""
        if not distributed.current().is_main:
            return self.path / name
        atomic_save(checkpoint, self.path / name)
        return self.path / name
