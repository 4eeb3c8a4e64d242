"""Parsing the run's reference time: ISO 8601 (naive means UTC) or epoch milliseconds.

Every time an operator gives (a run's `as_of`, a hold's `until`) lies from the Unix epoch to
before the year 9999: later than that, a date cannot be written (Python's dates end with year
9999) and a report, a hold list or a restore window could not show it.
"""

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
EARLIEST_MS = 0
LATEST_MS = (datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH) // _MS  # excluded
RANGE = "from 1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z"
_SHOWN = 40  # characters of a refused value repeated in its error


def now_ms() -> int:
    """The wall clock in epoch milliseconds: when the job acts (a claim, a ledger event, a
    window's end), never what it decides, which follows the run's `as_of`."""
    return int(time.time() * 1000)


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else f"{value[:_SHOWN]}...")


def in_range(ms: int) -> bool:
    """Whether `ms` is a time an operator may give (and `format_ms` can write)."""
    return EARLIEST_MS <= ms < LATEST_MS


def parse_as_of(value: str, name: str = "as_of") -> int:
    """Epoch ms of `value`, or a one-line `ValueError` naming the argument `name`."""
    text = value.strip()
    if text.isascii() and text.lstrip("-").isdigit():
        try:
            ms = int(text)
        except ValueError:  # more digits than Python converts: far out of range anyway
            ms = LATEST_MS
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError(
                f"{name} must be ISO 8601 or epoch milliseconds, got {_shown(value)}"
            ) from error
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Integer arithmetic: a float timestamp loses a millisecond on some dates after 2038.
        ms = (moment - _EPOCH) // _MS
    if not in_range(ms):
        raise ValueError(f"{name} {_shown(value)} is out of range: give a time {RANGE}")
    return ms


def format_ms(ms: int) -> str:
    # Integer arithmetic again: `ms / 1000` as a float is microseconds off near year 9999.
    return (_EPOCH + ms * _MS).isoformat().replace("+00:00", "Z")
