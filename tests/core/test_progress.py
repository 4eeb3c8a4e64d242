"""Progress lines of long steps: on time even when nothing moves, with done, total, rate and
time left."""

import threading
import time

import pytest

from cleanup_pipeline.core.progress import ProgressLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_says_done_of_total_rate_and_time_left() -> None:
    clock = FakeClock()
    progress = ProgressLog(print, "warnings", total=5_000, unit="users", clock=clock)
    progress.advance(1_200)
    clock.now += 100
    assert progress.line() == (
        "warnings: 1,200 of 5,000 users (24%), 12.0/s, about 5 min 17 s left; 1 min 40 s elapsed"
    )


def test_a_line_without_total_counts_so_far_and_names_counts_and_stage() -> None:
    clock = FakeClock()
    progress = ProgressLog(print, "users scanned", clock=clock, details=lambda: "sent 3")
    progress.advance(4_000, counted_as="pages")
    progress.advance(2_000, stage="segment 2")
    clock.now += 3 * 3600
    assert progress.line() == (
        "users scanned: 6,000 so far, 0.6/s; pages 4,000; sent 3; last: segment 2; 3 h 0 min "
        "elapsed"
    )


def test_a_count_callable_replaces_advance() -> None:
    done = [1, 2, 3]
    progress = ProgressLog(print, "warnings", total=3, count=lambda: len(done))
    assert progress.line().startswith("warnings: 3 of 3 (100%)")
    assert "left" not in progress.line()


def test_lines_come_every_interval_even_when_nothing_moves_and_a_last_one_at_the_end() -> None:
    lines: list[str] = []
    with ProgressLog(lines.append, "deletion batch_0000", total=6, interval=0.02) as progress:
        progress.advance(stage="re-read")
        time.sleep(0.25)  # one slow call: the lines keep coming
        during = list(lines)
        progress.advance(5, stage="user items")
    assert len(during) >= 5
    assert all(line.startswith("deletion batch_0000: 1 of 6 (17%)") for line in during)
    assert lines[-1].startswith("deletion batch_0000: 6 of 6 (100%)")
    assert "last: user items" in lines[-1]


def test_advance_from_many_threads_counts_every_item() -> None:
    lines: list[str] = []
    with ProgressLog(lines.append, "users scanned", interval=10) as progress:
        workers = [
            threading.Thread(target=lambda: [progress.advance() for _ in range(1_000)])
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert lines == [lines[-1]] and lines[-1].startswith("users scanned: 8,000 so far")


def test_a_failure_still_logs_where_it_stopped() -> None:
    lines: list[str] = []
    with pytest.raises(RuntimeError), ProgressLog(lines.append, "warnings", total=4) as progress:
        progress.advance(2)
        raise RuntimeError("SES down")
    assert lines == [lines[-1]]
    assert lines[-1].startswith("warnings: 2 of 4 (50%)")
    assert lines[-1].endswith("stopped by RuntimeError")
