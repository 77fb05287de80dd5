"""Returning the heap's free pages to the operating system (runtime.memory)."""

from __future__ import annotations

import platform

from bioclass.runtime.memory import release_free_heap


def test_release_free_heap_works_where_the_c_library_has_malloc_trim() -> None:
    # glibc has malloc_trim; musl, macOS and Windows do not, and there it must say so.
    assert release_free_heap() is (platform.libc_ver()[0] == "glibc")
