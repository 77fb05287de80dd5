"""Stop a long loop cleanly on Ctrl-C / SIGTERM: finish the current step, then save and exit."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StoppedAtOnce(KeyboardInterrupt):
    """A second Ctrl-C stopped a run at once; `args[0]` says what was kept and how to go on
    (the command line prints it instead of its generic advice)."""


class StopFlag:
    """Set by the first SIGINT/SIGTERM; a second SIGINT interrupts at once (KeyboardInterrupt)
    unless `second_stops_at_once` is off."""

    def __init__(self, second_stops_at_once: bool = True) -> None:
        self.requested = False
        self.second_stops_at_once = second_stops_at_once

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT and self.second_stops_at_once:
            raise KeyboardInterrupt
        self.requested = True


@contextmanager
def graceful_interrupt(second_stops_at_once: bool = True) -> Iterator[StopFlag]:
    """Within the block, Ctrl-C sets `flag.requested` instead of raising mid-step.

    Cutting a training step in half (weights updated, EMA not yet) would save an inconsistent
    state; checking the flag between steps keeps the saved state exactly resumable. Under
    torchrun a Ctrl-C reaches each rank twice (from the terminal, then passed on by torchrun),
    so there a second SIGINT is not the user's "stop at once" (`second_stops_at_once` off);
    torchrun itself kills ranks still running 30 s later.
    """
    flag = StopFlag(second_stops_at_once)
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be installed from the main thread
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, flag._handle)
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
