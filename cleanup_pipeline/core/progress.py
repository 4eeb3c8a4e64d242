"""Progress of a long step, told every few seconds: how much is done, of how much, how fast,
and how long the rest should take. A clock thread writes the line, so a step stuck on one slow
call still says so on time."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType

DEFAULT_INTERVAL_SECONDS = 30.0


def _duration(elapsed: float) -> str:
    seconds = round(elapsed)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ProgressLog:
    """Use as a context manager around the work; call `advance` as items finish (from any
    thread), or give `count`, read at each line. While open, `log` gets one line every
    `interval` seconds; on exit, a last one. `details` adds what the count alone does not say."""

    def __init__(
        self,
        log: Callable[[str], None],
        label: str,
        total: int | None = None,
        unit: str = "",
        interval: float = DEFAULT_INTERVAL_SECONDS,
        count: Callable[[], int] | None = None,
        details: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self.label, self.total, self.unit = log, label, total, unit
        self.interval, self._count, self._details, self._clock = interval, count, details, clock
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.stage = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = clock()

    def advance(self, n: int = 1, counted_as: str | None = None, stage: str | None = None) -> None:
        with self._lock:
            self.done += n
            if counted_as:
                self.counts[counted_as] += n
            if stage:
                self.stage = stage

    def line(self) -> str:
        with self._lock:
            done, counts, stage = self.done, dict(self.counts), self.stage
        if self._count is not None:
            done = self._count()
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = done / elapsed
        unit = f" {self.unit}" if self.unit else ""
        if self.total is None:
            text = f"{self.label}: {done:,}{unit} so far, {rate:,.1f}/s"
        else:
            share = done / self.total if self.total else 1.0
            text = f"{self.label}: {done:,} of {self.total:,}{unit} ({share:.0%}), {rate:,.1f}/s"
            if 0 < done < self.total:
                text += f", about {_duration((self.total - done) / rate)} left"
        if counts:
            text += "; " + ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))
        if self._details is not None:
            text += f"; {self._details()}"
        if stage:
            text += f"; last: {stage}"
        return f"{text}; {_duration(elapsed)} elapsed"

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._log(self.line())

    def __enter__(self) -> "ProgressLog":
        self._started = self._clock()
        self._thread = threading.Thread(target=self._tick, name=f"progress {self.label}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._log(self.line() + ("" if kind is None else f"; stopped by {kind.__name__}"))
