"""Keep the audio libraries' own notes off the user's terminal.

libsndfile decodes MP3 (also MP3 inside WAV files) with libmpg123, which writes notes such as
"Note: Illegal Audio-MPEG-Header 0x... at offset N." and "Hit end of (available) data during
resync" straight to file descriptor 2, from C: Python's `sys.stderr` never sees them, and
neither soundfile nor libsndfile lets mpg123 be told to be quiet. bioclass reports a damaged
file itself (scanned in part, repaired, or skipped with the reason), so these notes are noise.

While a command runs, descriptor 2 is pointed at a pipe; a thread copies everything from it to
the real stderr except the lines of those notes. Python's own `sys.stderr` (progress bars,
messages) is pointed straight at the real stderr meanwhile, so it still sees a terminal and
nothing of it is delayed; what reaches the pipe (C libraries, child processes) is passed on as
it comes, except an unfinished line that could still become such a note.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TextIO

# The notes libmpg123 prints on damaged or unusual MPEG streams (its source: "Note: ...",
# "Warning: ..." and "[src/libmpg123/<file>:<function>():<line>] error: ...").
NOISE = re.compile(
    rb"^(?:Note: (?:Illegal Audio-MPEG-Header|Trying to resync|Skipped \d+ bytes in input"
    rb"|Hit end of \(available\) data during resync)"
    rb"|Warning: (?:Xing stream size|Encountered more data after announced end|"
    rb"Big change from first)"
    rb"|\[src/libmpg123/)"
)
# Every start a noise line can have: a held-back line starts with one of these.
PREFIXES = (b"Note: ", b"Warning: ", b"[src/libmpg123/")
CHUNK = 1 << 16
DRAIN_TIMEOUT_S = 2.0


def _may_be_noise(partial: bytes) -> bool:
    """Whether an unfinished line could still become a noise line."""
    return any(p.startswith(partial) or partial.startswith(p) for p in PREFIXES)


class _Forwarder(threading.Thread):
    """Copies the pipe to the real stderr, dropping noise lines."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(name="bioclass-stderr-filter", daemon=True)
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.dropped = 0

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.write_fd, data) :]
        except OSError:
            pass  # stderr itself is gone: keep draining so writers never block on the pipe

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_fd, CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            kept = []
            for line in lines:
                if NOISE.match(line):
                    self.dropped += 1
                else:
                    kept.append(line + b"\n")
            if pending and not _may_be_noise(pending):
                kept.append(pending)
                pending = b""
            if kept:
                self._write(b"".join(kept))
        if pending and not NOISE.match(pending):
            self._write(pending)


@contextmanager
def library_noise_filtered(enabled: bool = True) -> Iterator[None]:
    """Run the body with libmpg123's notes dropped from descriptor 2 (see the module).

    Does nothing when disabled (`-v` shows them) or when descriptor 2 cannot be duplicated.
    """
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_fd, write_fd = os.pipe()
    forwarder = _Forwarder(read_fd, saved)
    forwarder.start()
    _flush_stderr()
    python_stderr = sys.stderr
    direct = _direct_stream(python_stderr, saved)
    if direct is not None:
        sys.stderr = direct
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        _flush_stderr()
        if direct is not None:
            sys.stderr = python_stderr
            direct.close()  # closefd=False: `saved` stays open
        os.dup2(saved, 2)  # closes the pipe's last write end held here: the thread sees EOF
        # A child process still holding the pipe (a data-loader worker) must not hang the exit.
        forwarder.join(DRAIN_TIMEOUT_S)
        if not forwarder.is_alive():
            os.close(read_fd)
            os.close(saved)


def _direct_stream(stream: TextIO, fd: int) -> TextIO | None:
    """A text stream on `fd` like `stream`, when `stream` writes to descriptor 2 (else None:
    e.g. a test runner's capture, which is left as it is)."""
    try:
        if stream.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    return open(  # noqa: SIM115 -- closed when the filter is removed
        fd,
        "w",
        encoding=stream.encoding,
        errors=stream.errors,
        buffering=1,
        closefd=False,
    )


def _flush_stderr() -> None:
    with suppress(OSError, ValueError):
        sys.stderr.flush()
