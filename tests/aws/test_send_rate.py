"""The send rate: slots 1/rate apart, never more than `rate` sends in a second, all of it used."""

import threading
import time
from itertools import pairwise
from types import SimpleNamespace

import pytest

from cleanup_pipeline.actions.notify import NotifyContext, warn_users
from cleanup_pipeline.actions.outcomes import WARNED
from cleanup_pipeline.aws import mailer
from cleanup_pipeline.aws.mailer import (
    DEFAULT_SEND_RATE,
    SendRateLimiter,
    account_send_rate,
    effective_send_rate,
)
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_state import sent_messages
from tests.support.items import notify_candidate, now_ms


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(mailer, "time", SimpleNamespace(sleep=fake.sleep, time=time.time))
    return fake


def most_in_one_second(times: list[float]) -> int:
    """Largest number of events in any closed window [t, t + 1 s]."""
    times = sorted(times)
    return max(sum(1 for u in times if t <= u <= t + 1.0) for t in times)


@pytest.mark.parametrize("rate", [1, 14, 50])
def test_slots_are_one_over_rate_apart(clock, rate):
    limiter = SendRateLimiter(rate, clock=clock)
    granted = []
    for _ in range(3 * rate + 5):
        limiter.acquire()
        granted.append(clock())

    assert granted[0] == 1_000.0
    gaps = [b - a for a, b in pairwise(granted)]
    assert gaps == pytest.approx([1 / rate] * len(gaps), rel=1e-5)
    assert most_in_one_second(granted) == rate
    # Throughput: the whole batch takes no longer than the rate requires.
    assert granted[-1] - granted[0] == pytest.approx((len(granted) - 1) / rate, rel=1e-5)


def test_idle_time_is_not_saved_up_for_a_burst(clock):
    limiter = SendRateLimiter(14, clock=clock)
    granted = []
    for _ in range(5):
        limiter.acquire()
        granted.append(clock())
    clock.now += 10.0
    for _ in range(30):
        limiter.acquire()
        granted.append(clock())

    assert granted[5] == granted[4] + 10.0
    assert most_in_one_second(granted) == 14
    later = granted[5:]
    gaps = [b - a for a, b in pairwise(later)]
    assert min(gaps) == pytest.approx(1 / 14, rel=1e-5)


def test_threads_share_one_schedule():
    rate, threads, each = 200, 4, 25
    limiter = SendRateLimiter(rate)
    granted: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(each):
            limiter.acquire()
            with lock:
                granted.append(time.monotonic())

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert len(granted) == threads * each
    elapsed = max(granted) - started
    assert elapsed >= (threads * each - 1) / rate * 0.99
    assert elapsed < (threads * each - 1) / rate + 1.0


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        SendRateLimiter(0)


@pytest.mark.parametrize(
    ("configured", "account", "expected"),
    [
        (None, None, 14.0),
        (None, 1.0, 1.0),
        (10.0, None, 10.0),
        (20.0, 10.0, 10.0),
        (5.0, 10.0, 5.0),
        (0.0, None, 14.0),
    ],
)
def test_effective_send_rate(configured, account, expected):
    assert effective_send_rate(configured, account) == expected
    assert DEFAULT_SEND_RATE == 14.0


def test_account_rate_unreadable_in_the_emulator_falls_back(aws):
    clients, _ = aws
    assert account_send_rate(clients.sesv2) is None
    assert effective_send_rate(None, account_send_rate(clients.sesv2)) == 14.0


class RecordingLimiter(SendRateLimiter):
    def __init__(self, rate: float, events: list[tuple[int, str]]) -> None:
        super().__init__(rate)
        self.events = events

    def acquire(self) -> None:
        super().acquire()
        self.events.append((threading.get_ident(), "slot"))


def test_every_send_is_the_next_call_after_its_slot(aws):
    """The rate applies to the sends themselves: no DynamoDB write (whose latency varies) sits
    between taking a send slot and sending, which would let two sends bunch together."""
    clients, settings = aws
    as_of = now_ms()
    ids = [f"n{i:02d}" for i in range(12)]
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate(u, as_of) for u in ids])
    events: list[tuple[int, str]] = []

    def record(name):
        def handler(**_):
            events.append((threading.get_ident(), name))

        return handler

    clients.sesv2.meta.events.register("before-call.sesv2.SendEmail", record("send"))
    clients.dynamodb.meta.events.register("before-call.dynamodb.*", record("dynamodb"))
    ctx = NotifyContext(
        dynamodb=clients.dynamodb,
        sesv2=clients.sesv2,
        users_table=settings.users_table,
        message=render_warning(
            settings.product_name, settings.app_url, settings.email_domain, Policy()
        ),
        limiter=RecordingLimiter(1000, events),
        run_id="run-1",
        as_of=as_of,
        policy=Policy(),
        workers=4,
    )
    outcomes = warn_users(ctx, ids)

    assert outcomes.count(WARNED) == 12
    assert len(sent_messages()) == 12
    by_thread: dict[int, list[str]] = {}
    for thread, name in events:
        by_thread.setdefault(thread, []).append(name)
    sequences = [names for names in by_thread.values() if "send" in names]
    assert sum(names.count("send") for names in sequences) == 12
    for names in sequences:
        for i, name in enumerate(names):
            if name == "send":
                assert i > 0 and names[i - 1] == "slot", names
            if name == "slot":
                assert i + 1 < len(names) and names[i + 1] == "send", names


def test_a_late_wake_up_never_brings_the_next_send_closer(monkeypatch):
    """The OS may wake a sleeper late; the next slot then counts from when this send really
    began, or two sends could come less than 1/rate apart and a window could hold rate + 1."""
    clock = FakeClock()
    wake_ups = iter([0.03, 0.0] * 100)

    def late_sleep(seconds: float) -> None:
        clock.sleep(seconds + next(wake_ups))

    monkeypatch.setattr(mailer, "time", SimpleNamespace(sleep=late_sleep, time=time.time))
    rate = 14
    limiter = SendRateLimiter(rate, clock=clock)
    granted = []
    for _ in range(4 * rate):
        limiter.acquire()
        granted.append(clock())

    gaps = [b - a for a, b in pairwise(granted)]
    assert min(gaps) >= 1 / rate
    assert most_in_one_second(granted) <= rate
