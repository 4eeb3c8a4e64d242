"""The requests table against moto: one open erase request per user however it is opened,
closing frees the user for a new one, listings page through everything oldest first, and a
missing table is one clear error (SPEC §12)."""

import threading
from dataclasses import replace

import pytest

from cleanup_pipeline.aws.requests_table import (
    MARKER_PREFIX,
    close_request,
    marker_id,
    new_request_id,
    note_request,
    open_request,
    record_request,
    scan_requests,
)
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.requests import Request, RequestError, RequestStatus, new_request
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.items import now_ms, s

DONE = RequestStatus.DONE


def _erase(user_id: str, now: int, **given: str) -> Request:
    return new_request(new_request_id(), user_id, "erase", now=now, deadline_days=30, **given)


def _items(db, table: str) -> list[dict]:
    return db.scan(TableName=table, ConsistentRead=True)["Items"]


def test_a_second_erase_request_for_the_user_returns_the_open_one(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    assert table == "requests"
    now = now_ms()
    first = _erase("u1", now, ref="ticket 12")
    assert open_request(db, table, first) == (first, True)
    again = _erase("u1", now + 5)
    assert open_request(db, table, again) == (first, False)
    other = _erase("u2", now + 7)
    assert open_request(db, table, other) == (other, True)
    assert scan_requests(db, table) == [first, other]
    # Each open erase request beside its user's marker; the second opening wrote nothing.
    ids = sorted(item["id"]["S"] for item in _items(db, table))
    assert ids == sorted([first.id, other.id, marker_id("u1"), marker_id("u2")])


def test_concurrent_openings_for_one_user_store_one_request(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    now = now_ms()
    openings = [_erase("u1", now) for _ in range(8)]
    start = threading.Barrier(len(openings))
    results: list[tuple[Request, bool]] = []

    def open_one(request: Request) -> None:
        start.wait()
        results.append(open_request(db, table, request))

    threads = [threading.Thread(target=open_one, args=(r,)) for r in openings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [stored] = scan_requests(db, table)
    assert [opened for _, opened in results].count(True) == 1
    assert {request for request, _ in results} == {stored}


def test_a_closed_request_frees_the_user_for_a_new_one(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    now = now_ms()
    first = _erase("u1", now)
    open_request(db, table, first)
    assert close_request(db, table, first, DONE, reason="verified", done_at=now + 1, run_id="r1")
    # Closed once: a second close changes nothing.
    assert not close_request(db, table, first, DONE, reason="again", done_at=now + 2, run_id="r2")
    second = _erase("u1", now + 3)
    assert open_request(db, table, second) == (second, True)
    done = replace(first, status=DONE, reason="verified", done_at=now + 1, run_id="r1")
    assert scan_requests(db, table) == [done, second]


@pytest.mark.parametrize("left_behind", ["closed", "missing", "another user's"])
def test_a_marker_naming_nothing_open_is_taken_over(aws, left_behind):
    """What a close that stopped between its two writes, or a hand edit, leaves behind."""
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    now = now_ms()
    old = _erase("u1" if left_behind != "another user's" else "u9", now - DAY_MS)
    if left_behind != "missing":
        open_request(db, table, replace(old, status=RequestStatus.OPEN))
        db.delete_item(TableName=table, Key={"id": s(marker_id(old.user_id))})
    if left_behind == "closed":
        close_request(db, table, old, DONE, reason="verified", done_at=now, run_id="r1")
    db.put_item(
        TableName=table, Item={"id": s(marker_id("u1")), "request_id": s(old.id)}
    )  # the stale marker
    new = _erase("u1", now)
    assert open_request(db, table, new) == (new, True)
    marker = db.get_item(TableName=table, Key={"id": s(marker_id("u1"))})["Item"]
    assert marker["request_id"] == s(new.id)
    assert open_request(db, table, _erase("u1", now + 1)) == (new, False)


def test_the_listing_is_consistent_pages_through_everything_and_skips_what_is_no_request(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    base = now_ms() - 40 * DAY_MS
    # Long references: 1,200 requests of ~1 KB are more than one 1 MB Scan page.
    items = [
        {
            "id": s(f"req-{i:04d}"),
            "user_id": s(f"u{i}"),
            "kind": s("erase" if i % 2 else "export"),
            "received_at": {"N": str(base - i * 1000)},  # the later the id, the older
            "due_at": {"N": str(base - i * 1000 + 30 * DAY_MS)},
            "status": s("open"),
            "ref": s("r" * 1000),
        }
        for i in range(1200)
    ]
    odd = [
        {"id": s(f"{MARKER_PREFIX}abc"), "request_id": s("req-0001")},
        {"id": s("no-kind"), "user_id": s("u"), "received_at": {"N": "1"}, "due_at": {"N": "2"}},
        {"id": s("bad-time"), "user_id": s("u"), "kind": s("erase"), "status": s("open")},
    ]
    put_items(db, table, items + odd)
    scans = record_params(db, "Scan")
    listed = scan_requests(db, table)
    assert len(scans) > 1 and all(scan["ConsistentRead"] for scan in scans)
    assert [request.id for request in listed] == [f"req-{i:04d}" for i in reversed(range(1200))]


def test_an_open_request_gets_a_reason_and_a_closed_one_keeps_its_own(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.requests_table
    now = now_ms()
    export = new_request(new_request_id(), "u1", "export", now=now, deadline_days=30)
    record_request(db, table, export)
    assert note_request(db, table, export, "no export written: OSError: disk full")
    [stored] = scan_requests(db, table)
    assert (stored.status, stored.reason) == ("open", "no export written: OSError: disk full")
    assert close_request(db, table, export, DONE, reason="exported", done_at=now, run_id=None)
    assert not note_request(db, table, export, "too late")
    [closed] = scan_requests(db, table)
    assert (closed.status, closed.reason) == ("done", "exported")


@pytest.mark.parametrize("call", ["open", "list", "close"])
def test_a_missing_table_is_one_clear_error_and_nothing_is_written(aws, call):
    clients, _settings = aws
    db = clients.dynamodb
    tables = db.list_tables()["TableNames"]
    request = _erase("u1", now_ms())
    with pytest.raises(RequestError) as refused:
        if call == "open":
            open_request(db, "no-such-table", request)
        elif call == "list":
            scan_requests(db, "no-such-table")
        else:
            close_request(db, "no-such-table", request, DONE, reason="x", done_at=1, run_id=None)
    assert str(refused.value) == (
        "REQUESTS_TABLE_NAME: table 'no-such-table' does not exist: create it (key id, string) "
        "or name an existing table"
    )
    assert db.list_tables()["TableNames"] == tables
    assert all(_items(db, table) == [] for table in tables)
