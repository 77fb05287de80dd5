"""Giving the heap's free pages back to the operating system during long scans.

Exact mode on a CPU scores pieces of a few windows on worker threads. Their tensors (5-40 MB for
CNN10) are below glibc's mmap threshold once it has adapted, so they come from the threads'
malloc arenas, which keep freed pages: over a 24-hour file the resident memory crept from
0.65 GB to 1.9 GB without growing in use. `malloc_trim` hands those free pages back (0.67 GB
for the same file); called between batches, it cost 7 % of that scan's wall time in one pair of
runs (`benchmarks/scan_e2e.py --day`), the pages it returns being faulted in again.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process: its C library
    except (OSError, TypeError):
        return None
    return getattr(libc, "malloc_trim", None)


def release_free_heap() -> bool:
    """Return the heap's free pages to the operating system; False where that cannot be done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
