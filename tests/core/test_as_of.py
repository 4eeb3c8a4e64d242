"""Parsing and formatting the run's reference time."""

import ast
import time
from pathlib import Path

import pytest

from cleanup_pipeline.core.as_of import format_ms, now_ms, parse_as_of

PACKAGE = Path(__file__).resolve().parents[2] / "cleanup_pipeline"

NEW_YEAR_2024 = 1_704_067_200_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", NEW_YEAR_2024),
        ("2024-01-01T00:00:00.000Z", NEW_YEAR_2024),
        ("2024-01-01T00:00:00.001Z", NEW_YEAR_2024 + 1),
        ("2024-01-01T00:00:00.999Z", NEW_YEAR_2024 + 999),
        ("2024-01-01T00:00:00.123456Z", NEW_YEAR_2024 + 123),
        ("2024-01-01T00:00:00+00:00", NEW_YEAR_2024),
        ("2024-01-01T02:00:00+02:00", NEW_YEAR_2024),
        ("2023-12-31T19:00:00-05:00", NEW_YEAR_2024),
        ("2024-01-01T05:30:00.250+05:30", NEW_YEAR_2024 + 250),
        ("2024-01-01T00:00:00", NEW_YEAR_2024),  # naive means UTC
        ("2024-01-01 00:00:00", NEW_YEAR_2024),
        ("2024-01-01", NEW_YEAR_2024),
        ("1704067200000", NEW_YEAR_2024),
        (" 1704067200123 ", NEW_YEAR_2024 + 123),
        ("0", 0),
        ("2038-01-19T09:10:54.865Z", 2_147_505_054_865),
        ("2040-01-01T00:00:00.535Z", 2_208_988_800_535),
    ],
)
def test_parse_as_of(text, expected):
    assert parse_as_of(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "yesterday", "2024-13-01", "2024-01-01T25:00:00Z", "1.7e12", "12:00", "now"],
)
def test_garbage_raises_value_error(text):
    with pytest.raises(ValueError):
        parse_as_of(text)


def test_format_ms():
    assert format_ms(NEW_YEAR_2024) == "2024-01-01T00:00:00Z"
    assert format_ms(NEW_YEAR_2024 + 123) == "2024-01-01T00:00:00.123000Z"


@pytest.mark.parametrize(
    "ms",
    [
        0,
        1,
        946_684_800_000,
        NEW_YEAR_2024 + 1,
        1_750_000_000_999,
        2_147_483_647_999,
        2_147_505_054_865,
        2_173_901_119_535,
        4_102_444_799_999,
    ],
)
def test_format_then_parse_round_trips_to_the_millisecond(ms):
    assert parse_as_of(format_ms(ms)) == ms


LATEST = "9998-12-31T23:59:59.999Z"  # the last millisecond a time may name
LATEST_MS = 253_370_764_799_999


@pytest.mark.parametrize(("text", "expected"), [(LATEST, LATEST_MS), (str(LATEST_MS), LATEST_MS)])
def test_the_last_millisecond_before_year_9999_is_allowed(text, expected):
    assert parse_as_of(text) == expected
    assert format_ms(expected) == "9998-12-31T23:59:59.999000Z"


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999",
        str(LATEST_MS + 1),
        "9999-01-01",
        "9999-12-31T23:59:59Z",
        "-1",
        "1969-12-31T23:59:59.999Z",
        "0001-01-01",
        "9" * 5000,  # more digits than Python converts to a number
    ],
)
def test_a_time_out_of_range_is_refused_in_one_line_naming_the_argument(text):
    with pytest.raises(ValueError) as raised:
        parse_as_of(text, "--as-of")
    message = str(raised.value)
    assert message.startswith("--as-of ") and "out of range" in message
    assert "\n" not in message and len(message) < 200


def test_garbage_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"^--until must be ISO 8601"):
        parse_as_of("next tuesday", "--until")


def test_now_ms_is_the_wall_clock_in_whole_milliseconds():
    before = int(time.time() * 1000)
    now = now_ms()
    after = int(time.time() * 1000)
    assert isinstance(now, int) and before <= now <= after


def _wall_clock_reads(layers: tuple[str, ...]) -> list[str]:
    """Where `time.time()` is read outside `core/as_of.py`: each such place computes the time
    apart instead of asking `now_ms`."""
    found = []
    for layer in layers:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            if path == PACKAGE / "core" / "as_of.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "time.time":
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_the_wall_clock_in_milliseconds_is_read_in_one_place():
    assert _wall_clock_reads(("core", "aws", "observability", "actions", "local")) == []


def test_the_wiring_reads_the_wall_clock_through_now_ms():
    assert _wall_clock_reads(("orchestration", "cli")) == []
