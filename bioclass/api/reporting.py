"""What the Python API shows while it works: nothing unless asked (`progress=True`).

The procedures below the API report through the one rich console and the `bioclass` logger, as
the command line wants; a notebook wants its cell's output to be its own. So for the length of a
call the console is muted and the logger's records are dropped (what they would have said is in
the returned summary: failed and damaged files), or, when asked, both print as the CLI's do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bioclass.core.console import console, progress_bar, setup_logging


@contextmanager
def reporting(progress: bool) -> Iterator[None]:
    """Mute the console and the `bioclass` logger for the block, unless `progress`."""
    if progress:
        setup_logging()
        yield
        return
    # A level above every record: the package's modules log to child loggers, which take
    # their level from this one (disabling it alone would not stop them).
    logger = logging.getLogger("bioclass")
    saved = console.quiet, logger.level
    console.quiet = True
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        console.quiet = saved[0]
        logger.setLevel(saved[1])


@contextmanager
def file_progress(progress: bool, what: str, total: int) -> Iterator[Callable[[Path], None]]:
    """A per-file callback that advances a progress bar (a no-op without `progress`)."""
    if not progress:
        yield lambda path: None
        return
    with progress_bar() as bar:
        task = bar.add_task(what, total=total, info="")
        yield lambda path: bar.update(task, advance=1, info=Path(str(path)).name)
