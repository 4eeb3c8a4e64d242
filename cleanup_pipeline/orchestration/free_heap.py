"""Handing the C library's freed heap back to the operating system, in a run process."""

import ctypes
import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def _malloc_trim() -> Callable[[int], Any] | None:
    # glibc's; other C libraries (musl, macOS) have no such call and the release is skipped.
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def release_free_heap() -> bool:
    """Return the free pages of every malloc arena to the OS (glibc's `malloc_trim(0)`); False
    where the C library offers no such call. Frees nothing that is in use.

    glibc gives memory back on its own only from the top of each arena, so after a burst of
    short-lived allocations (the scan's pages, parsed in four threads, each with its own arena)
    the freed pages below live ones stay resident until the process ends.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
