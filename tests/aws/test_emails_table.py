"""Archiving addresses in the emails table against moto: transactions of conditional puts that
never overwrite an address already kept, and retry only what a cancellation left unwritten."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cleanup_pipeline.aws import emails_table
from cleanup_pipeline.aws.emails_table import MAX_BUSY_RETRIES, ArchiveError, archive_addresses
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import Fault, record_params
from tests.support.aws_state import get_item, scan_all
from tests.support.items import s


def addresses(count: int, start: int = 0) -> list[str]:
    return [f"user{i:04d}@example.com" for i in range(start, start + count)]


def written(call: dict[str, Any]) -> list[str]:
    return [action["Put"]["Item"]["id"]["S"] for action in call["TransactItems"]]


def cancelled(*codes: str) -> ClientError:
    """A cancellation as DynamoDB reports it: one reason per item of the transaction."""
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled by the test"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


@pytest.fixture
def emails(aws) -> tuple[Any, str, list[dict[str, Any]]]:
    """The emails table, and the parameters of every TransactWriteItems made on it."""
    clients, settings = aws
    return (
        clients.dynamodb,
        settings.emails_table,
        record_params(clients.dynamodb, "TransactWriteItems"),
    )


@pytest.fixture
def no_sleep(monkeypatch) -> list[float]:
    naps: list[float] = []
    monkeypatch.setattr(emails_table.time, "sleep", naps.append)
    return naps


def test_none_present_one_transaction_per_100_addresses_each_put_conditional(emails):
    db, table, calls = emails
    wanted = addresses(250)
    archive_addresses(db, table, wanted)
    assert [len(written(call)) for call in calls] == [100, 100, 50]
    assert [a for call in calls for a in written(call)] == wanted
    puts = [action["Put"] for call in calls for action in call["TransactItems"]]
    assert all(set(action) == {"Put"} for call in calls for action in call["TransactItems"])
    assert {p["ConditionExpression"] for p in puts} == {"attribute_not_exists(#id)"}
    assert {p["ExpressionAttributeNames"]["#id"] for p in puts} == {"id"}
    assert scan_all(db, table) == {a: {"id": s(a)} for a in wanted}


def test_some_present_are_never_overwritten_and_only_the_others_are_retried(emails):
    db, table, calls = emails
    wanted = addresses(130)
    # Kept by the app, with attributes of its own: in the first and in the second transaction.
    kept = [
        {"id": s(a), "source": s("signup"), "createdAt": {"N": "1600000000000"}}
        for a in wanted[::40]
    ]
    batch_write(db, table, kept)
    archive_addresses(db, table, wanted)
    first_missing = [a for a in wanted[:100] if a not in wanted[::40]]
    second_missing = [a for a in wanted[100:] if a not in wanted[::40]]
    assert [written(call) for call in calls] == [
        wanted[:100],
        first_missing,
        wanted[100:],
        second_missing,
    ]
    stored = scan_all(db, table)
    assert set(stored) == set(wanted)
    for item in kept:
        assert stored[item["id"]["S"]] == item
    for address in first_missing + second_missing:
        assert stored[address] == {"id": s(address)}


def test_all_present_is_one_cancelled_transaction_and_nothing_changes(emails):
    db, table, calls = emails
    kept = [{"id": s(a), "unsubscribed": {"BOOL": True}} for a in addresses(3)]
    batch_write(db, table, kept)
    archive_addresses(db, table, addresses(3))
    assert [written(call) for call in calls] == [addresses(3)]
    assert scan_all(db, table) == {item["id"]["S"]: item for item in kept}


def test_duplicates_are_written_once_in_first_seen_order(emails):
    db, table, calls = emails
    given = ["b@example.com", "a@example.com", "b@example.com", "c@example.com", "a@example.com"]
    archive_addresses(db, table, given)
    assert [written(call) for call in calls] == [
        ["b@example.com", "a@example.com", "c@example.com"]
    ]
    assert sorted(scan_all(db, table)) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


def test_no_address_makes_no_call(emails):
    db, table, calls = emails
    archive_addresses(db, table, [])
    assert calls == []


def test_a_conflict_cancellation_is_retried_after_a_pause(emails, no_sleep):
    db, table, calls = emails
    batch_write(db, table, [{"id": s("kept@example.com"), "source": s("signup")}])
    wanted = ["kept@example.com", *addresses(3)]
    # DynamoDB cancels the first attempt: another write to the first new item was in progress.
    fault = Fault(
        db,
        "TransactWriteItems",
        lambda _: not fault.calls,
        lambda: cancelled("ConditionalCheckFailed", "TransactionConflict", "None", "None"),
    )
    archive_addresses(db, table, wanted)
    fault.remove()
    # The kept address is dropped at once, the conflicted and untried ones retried together.
    assert [written(call) for call in calls] == [wanted, addresses(3)]
    assert written(fault.calls[0]) == wanted
    assert len(no_sleep) == 1 and no_sleep[0] > 0
    assert get_item(db, table, "kept@example.com") == {
        "id": s("kept@example.com"),
        "source": s("signup"),
    }
    assert set(scan_all(db, table)) == {"kept@example.com", *addresses(3)}


def test_busy_cancellations_are_retried_a_bounded_number_of_times_then_raise(emails, no_sleep):
    db, table, _ = emails
    fault = Fault(
        db, "TransactWriteItems", lambda _: True, lambda: cancelled("ThrottlingError", "None")
    )
    with pytest.raises(ArchiveError, match="2 addresses still not archived") as raised:
        archive_addresses(db, table, addresses(2))
    fault.remove()
    assert len(fault.calls) == MAX_BUSY_RETRIES + 1
    assert len(no_sleep) == MAX_BUSY_RETRIES
    assert no_sleep == sorted(no_sleep) and max(no_sleep) <= 2.0
    assert "@" not in str(raised.value)  # never an address in an error
    assert scan_all(db, table) == {}


@pytest.mark.parametrize(
    "error",
    [
        cancelled("ValidationError", "None"),
        cancelled("None", "None"),  # nothing to drop and nothing busy: would loop forever
        cancelled("None"),  # reasons that do not match the items
        ClientError(
            {"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}},
            "TransactWriteItems",
        ),
    ],
)
def test_other_refusals_raise_without_retrying(emails, no_sleep, error):
    db, table, _ = emails
    fault = Fault(db, "TransactWriteItems", lambda _: True, lambda: error)
    with pytest.raises((ArchiveError, ClientError)) as raised:
        archive_addresses(db, table, addresses(2))
    fault.remove()
    assert len(fault.calls) == 1 and no_sleep == []
    assert "@" not in str(raised.value)


def test_an_address_the_app_writes_between_two_rounds_is_not_overwritten(emails):
    db, table, calls = emails
    batch_write(db, table, [{"id": s("kept@example.com")}])
    app_item = {"id": s("late@example.com"), "source": s("signup")}

    def app_writes_it_now(**_: object) -> None:  # right after the first, cancelled transaction
        if len(calls) == 1:
            db.put_item(TableName=table, Item=app_item)

    db.meta.events.register("after-call.dynamodb.TransactWriteItems", app_writes_it_now)
    archive_addresses(db, table, ["kept@example.com", "late@example.com", "new@example.com"])
    db.meta.events.unregister("after-call.dynamodb.TransactWriteItems", app_writes_it_now)
    assert [written(call) for call in calls] == [
        ["kept@example.com", "late@example.com", "new@example.com"],
        ["late@example.com", "new@example.com"],
        ["new@example.com"],
    ]
    assert get_item(db, table, "late@example.com") == app_item
    assert get_item(db, table, "new@example.com") == {"id": s("new@example.com")}
