"""The rules of a person's request, without I/O: what may be opened, its due date, the days left
and the deadline counts; and the requests settings (SPEC §12, §6)."""

import pytest

from cleanup_pipeline.core.as_of import parse_as_of
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.requests import (
    OpenRequests,
    Request,
    RequestError,
    RequestKind,
    RequestStatus,
    days_left,
    deadline_counts,
    new_request,
    oldest_first,
)
from cleanup_pipeline.core.settings import load_settings

NOW = parse_as_of("2026-06-01T12:00:00Z")
REQUIRED = {"APP_URL": "https://a", "EMAIL_DOMAIN": "a.test", "PUBLIC_BUCKET_NAME": "b"}


def _open(user_id: str = "u1", kind: str = "erase", deadline_days: int = 30, **given) -> Request:
    return new_request("req-1", user_id, kind, now=NOW, deadline_days=deadline_days, **given)


def test_a_request_is_due_the_deadline_after_it_was_received() -> None:
    request = _open()
    assert request == Request("req-1", "u1", RequestKind.ERASE, NOW, NOW + 30 * DAY_MS)
    assert request.status == RequestStatus.OPEN and request.is_open
    earlier = _open(received="2026-05-01T00:00:00Z", deadline_days=45, ref="ticket 7")
    received = parse_as_of("2026-05-01T00:00:00Z")
    assert (earlier.received_at, earlier.due_at) == (received, received + 45 * DAY_MS)
    assert earlier.ref == "ticket 7"
    assert _open(kind=" export ").kind == RequestKind.EXPORT
    assert _open(received=str(NOW)).received_at == NOW  # epoch ms, exactly now


def test_the_record_shows_every_field_and_the_days_left() -> None:
    shown = _open(ref="mail from jane.doe@example.com").as_json(NOW + DAY_MS)
    assert shown == {
        "id": "req-1",
        "user_id": "u1",
        "kind": "erase",
        "ref": "mail from j***@example.com",  # shown in reports and the UI: masked
        "received_at": NOW,
        "due_at": NOW + 30 * DAY_MS,
        "status": "open",
        "reason": None,
        "done_at": None,
        "run_id": None,
        "due": "2026-07-01T12:00:00Z",
        "days_left": 29.0,
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"kind": "forget"}, "unknown request kind 'forget': give one of erase, export"),
        ({"kind": ""}, "unknown request kind"),
        ({"user_id": ""}, "is empty"),
        ({"user_id": "   "}, "is empty"),
        ({"user_id": "x" * 2049}, "longer than 2,048 bytes"),
        ({"user_id": "é" * 1025}, "longer than 2,048 bytes"),  # bytes, not characters
        ({"user_id": "a/b"}, "contains '/'"),
        ({"received": "yesterday"}, "received (--received / received) must be ISO 8601"),
        ({"received": "2026-13-01"}, "must be ISO 8601"),
        ({"received": "9999-06-01"}, "out of range"),
        ({"received": "2026-06-01T12:00:00.001Z"}, "is in the future"),
        ({"received": "2027-01-01"}, "is in the future"),
        ({"ref": "x" * 1001}, "longer than 1,000 characters"),
    ],
)
def test_bad_input_is_refused_in_one_line(given: dict, message: str) -> None:
    with pytest.raises(RequestError) as refused:
        _open(**given)
    text = str(refused.value)
    assert message in text and "\n" not in text


def test_the_longest_user_id_a_key_holds_is_accepted() -> None:
    assert _open(user_id="x" * 2048).user_id == "x" * 2048


@pytest.mark.parametrize(
    ("left_ms", "days"),
    [
        (30 * DAY_MS, 30.0),
        (30 * DAY_MS - 1, 29.99),  # never more than is left
        (DAY_MS // 2, 0.5),
        (0, 0.0),
        (-1, -0.01),  # negative as soon as it is overdue
        (-DAY_MS, -1.0),
        (-40 * DAY_MS, -40.0),
    ],
)
def test_days_left_are_rounded_down_and_negative_when_overdue(left_ms: int, days: float) -> None:
    assert days_left(NOW + left_ms, NOW) == days


def _due_in(days: float, status: RequestStatus = RequestStatus.OPEN, rid: str = "r") -> Request:
    due = NOW + round(days * DAY_MS)
    return Request(rid, "u", RequestKind.ERASE, due - 30 * DAY_MS, due, status)


def test_the_deadline_counts_split_the_open_requests_by_days_left() -> None:
    requests = [
        _due_in(30),
        _due_in(3.5),  # more than 3 days left: not yet due soon
        _due_in(3),
        _due_in(0.2),
        _due_in(0),  # due this very moment: not overdue yet
        _due_in(-0.001),
        _due_in(-12),
        _due_in(-12, RequestStatus.DONE),  # closed requests are not counted
        _due_in(1, RequestStatus.REFUSED),
    ]
    assert deadline_counts(requests, NOW) == {
        "requests_open": 7,
        "requests_due_soon": 3,
        "requests_overdue": 2,
    }
    assert deadline_counts([], NOW) == {
        "requests_open": 0,
        "requests_due_soon": 0,
        "requests_overdue": 0,
    }


def test_the_counts_after_a_run_leave_out_the_requests_it_closed() -> None:
    read = OpenRequests(
        NOW, (_due_in(-1, rid="late"), _due_in(2, rid="soon"), _due_in(20, rid="later")), "t"
    )
    after = read.after({"late", "not-read"})
    assert [r.id for r in after.requests] == ["soon", "later"]
    assert (after.read_at, after.table) == (NOW, "t")
    assert after.counts() == {"requests_open": 2, "requests_due_soon": 1, "requests_overdue": 0}
    assert read.counts()["requests_open"] == 3  # the read itself is unchanged
    assert read.after(()) == read


def test_requests_are_listed_oldest_first() -> None:
    newer, older, same_time = _due_in(5, rid="b"), _due_in(1, rid="z"), _due_in(5, rid="a")
    assert oldest_first([newer, older, same_time]) == [older, same_time, newer]


def test_requests_are_off_and_due_in_thirty_days_by_default() -> None:
    settings = load_settings(REQUIRED)
    assert (settings.requests_table, settings.request_deadline_days) == (None, 30)
    chosen = load_settings(
        {**REQUIRED, "REQUESTS_TABLE_NAME": " ops.requests-1 ", "REQUEST_DEADLINE_DAYS": "45"}
    )
    assert (chosen.requests_table, chosen.request_deadline_days) == ("ops.requests-1", 45)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REQUESTS_TABLE_NAME", "my requests"),
        ("REQUESTS_TABLE_NAME", "rq"),
        ("REQUESTS_TABLE_NAME", "r" * 256),
        ("REQUESTS_TABLE_NAME", "requests*"),
        ("REQUESTS_TABLE_NAME", "users"),  # the table the job deletes from
        ("REQUEST_DEADLINE_DAYS", "0"),
        ("REQUEST_DEADLINE_DAYS", "-30"),
        ("REQUEST_DEADLINE_DAYS", "30.5"),
        ("REQUEST_DEADLINE_DAYS", "thirty"),
        ("REQUEST_DEADLINE_DAYS", "366"),
        ("REQUEST_DEADLINE_DAYS", "٣٠"),  # digits, but not ASCII ones
    ],
)
def test_a_malformed_requests_setting_is_an_error_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable} must "):
        load_settings({**REQUIRED, variable: value})


def test_the_requests_table_is_not_the_holds_table() -> None:
    env = {**REQUIRED, "HOLDS_TABLE_NAME": "ops", "REQUESTS_TABLE_NAME": "ops"}
    with pytest.raises(ValueError, match="the table of HOLDS_TABLE_NAME"):
        load_settings(env)
