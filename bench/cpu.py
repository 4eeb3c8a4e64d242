"""Process CPU time over a stretch of wall time, sampled by a thread.

On a shared machine a step's wall time includes waiting for a core. The CPU time the whole
benchmark process got (the job's threads and the in-process moto server's alike) over the same
stretch tells how much of the wall time was work: CPU / wall well below 1 on 2 cores means the
process mostly waited.
"""

import bisect
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class CpuSamples:
    at: list[float] = field(default_factory=list)  # time.time()
    cpu: list[float] = field(default_factory=list)  # process user + system seconds

    def add(self) -> None:
        self.at.append(time.time())
        self.cpu.append(_cpu())

    def _cpu_at(self, moment: float) -> float:
        """Process CPU seconds at `moment`, interpolated between the nearest samples."""
        i = bisect.bisect_left(self.at, moment)
        if i == 0:
            return self.cpu[0]
        if i == len(self.at):
            return self.cpu[-1]
        t0, t1, c0, c1 = self.at[i - 1], self.at[i], self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (moment - t0) / (t1 - t0) if t1 > t0 else c1

    def between(self, start: float, end: float) -> float:
        return self._cpu_at(end) - self._cpu_at(start) if self.at else 0.0


@contextmanager
def sampling(interval: float = 0.1) -> Iterator[CpuSamples]:
    samples = CpuSamples()
    stop = threading.Event()

    def run() -> None:
        samples.add()
        while not stop.wait(interval):
            samples.add()
        samples.add()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
