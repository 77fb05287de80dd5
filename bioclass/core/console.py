"""The one rich console (on stderr: stdout is for data), logging setup and progress bars."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
# Errors and warnings: printed even with --quiet, which silences `console` (bars, tables, info).
alerts = Console(stderr=True)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Route library logging through rich on stderr (idempotent; the last call decides).

    `quiet` silences progress bars, tables and info lines; warnings and errors still print.
    """
    console.quiet = quiet
    root = logging.getLogger("bioclass")
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=alerts, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.propagate = False


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A rich progress display for long loops (decoding, training, inference)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    ) as progress:
        yield progress


class DeferredProgress:
    """One progress bar that appears only when `start` is called: a command checks its inputs
    (model, hop, output paths) first, so a refusal is one line with no bar above it."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.total = total
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._stack = ExitStack()

    def start(self) -> None:
        """Show the bar (idempotent)."""
        if self._progress is None:
            self._progress = self._stack.enter_context(progress_bar())
            self._task = self._progress.add_task(self.description, total=self.total, info="")

    def update(self, **fields: Any) -> None:
        """`Progress.update` on the bar (shown now if it was not yet)."""
        self.start()
        assert self._progress is not None and self._task is not None
        self._progress.update(self._task, **fields)

    def hide(self) -> None:
        """Hide the bar, e.g. before a refusal whose one line says it all."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, visible=False)

    def __enter__(self) -> DeferredProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
