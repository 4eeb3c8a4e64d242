"""Peak memory of a block: resident set size sampled by a thread, Arrow's memory pool, and
tracemalloc (Python objects and numpy buffers; Arrow buffers are invisible to it)."""

import os
import resource
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

_PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
MB = 1000 * 1000  # the unit of the targets (SPEC §8)


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def max_rss_bytes() -> int:
    """Peak resident set size of this process since it started (getrusage, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Sampled:
    rss_peak_delta: int = 0
    arrow_peak_delta: int = 0


@contextmanager
def sampled_peak(interval: float = 0.002) -> Iterator[Sampled]:
    """Largest increase of RSS and of Arrow's allocated bytes over their values at entry."""
    result = Sampled()
    rss0, arrow0 = rss_bytes(), pa.total_allocated_bytes()
    stop = threading.Event()

    def sample() -> None:
        while True:
            result.rss_peak_delta = max(result.rss_peak_delta, rss_bytes() - rss0)
            result.arrow_peak_delta = max(
                result.arrow_peak_delta, pa.total_allocated_bytes() - arrow0
            )
            if stop.wait(interval):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.rss_peak_delta = max(result.rss_peak_delta, rss_bytes() - rss0)


@dataclass
class Traced:
    peak: int = 0


@contextmanager
def traced_peak() -> Iterator[Traced]:
    """Peak of memory allocated inside the block, as tracemalloc sees it."""
    result = Traced()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    try:
        yield result
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result.peak = peak - before
