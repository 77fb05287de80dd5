"""End the `bioclass` process without the interpreter's teardown.

A Python process that has imported torch spends a noticeable time after its last line: the
interpreter frees every module and object, and libtorch runs its static destructors (about a
fifth of `python -c "import torch"`'s wall time on the project's 2-core machine, see the README's
Start-up). Nothing of that is needed once a command has finished, and users run bioclass once
per file from loops and schedulers, so the executable ends with `os._exit` instead, after doing
what a normal exit does that matters to the outside world:

- Python's exit handlers (`atexit`: logging's flush, multiprocessing's child clean-up, Ray's
  shutdown, `weakref.finalize` callbacks such as temporary folders), in their usual order;
- flushing stdout and stderr, reporting a failed flush as Python would (a full disk behind a
  redirected stdout must not pass silently).

Where another thread that Python would wait for is still running, the normal exit runs instead:
only the interpreter knows how to wait for it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

# Python's own status when flushing stdout at exit fails.
FLUSH_FAILED = 120


def exit_code(status: object) -> int:
    """`sys.exit`'s meaning of `status`: None is 0, an int itself, anything else is printed to
    stderr and is 1."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status
    print(status, file=sys.stderr)
    return 1


def _waits_for_threads() -> bool:
    """Whether a normal exit would wait for a thread (a non-daemon one still running)."""
    main = threading.main_thread()
    return any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate())


def quick_exit(status: object) -> NoReturn:
    """End the process with `status` (as `sys.exit` takes it), skipping the teardown."""
    # CPython's own runner of the exit handlers (last registered first; cleared once run); an
    # interpreter without it gets the normal exit.
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or _waits_for_threads():
        sys.exit(status)
    code = exit_code(status)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError) as exc:
            # ValueError: a stream a handler closed. A broken pipe (`| head`) is the reader's
            # choice, not a failure, as in any Unix tool.
            if stream is sys.stdout and not isinstance(exc, BrokenPipeError | ValueError):
                try:
                    print(f"error: writing standard output failed: {exc}", file=sys.stderr)
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                code = code or FLUSH_FAILED
    os._exit(code)
