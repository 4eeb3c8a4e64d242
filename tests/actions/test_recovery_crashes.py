"""The process dies between archive, delete and ledger: whatever the point, the next run records
each deletion exactly once, with the counts of what was removed, and the restore brings back
everything of a deletion that spanned several attempts; a user who came back meanwhile gets
back everything the dead run had hidden or removed."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.ledger import reconcile
from cleanup_pipeline.aws.archive_store import LocalArchive
from cleanup_pipeline.core.data_map import builtin_map
from cleanup_pipeline.core.recovery import group_of
from tests.support.aws_state import get_item, keys_under, scan_all
from tests.support.cascade import run_cascade
from tests.support.items import now_ms
from tests.support.recovery_world import (
    FILES,
    MONTH,
    WEEK,
    archive,
    body_of,
    journals,
    ledger,
    manifests,
    next_run,
    restore,
    seed,
    settle,
    versions_under,
    with_window,
)


class Crash(BaseException):
    """The process running the batch died here."""


@contextmanager
def dies_before(client: Any, operation: str, table: str | None = None) -> Iterator[None]:
    """Every call of `operation` (on `table`) from now on raises `Crash`."""
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-parameter-build.{service}.{operation}"

    def crash(params: dict[str, Any], **_: Any) -> None:
        if table is None or params.get("TableName") == table:
            raise Crash

    client.meta.events.register(event, crash)
    try:
        with pytest.raises(Crash):
            yield
    finally:
        client.meta.events.unregister(event, crash)


@contextmanager
def archive_dies(monkeypatch: pytest.MonkeyPatch, method: str, prefix: str) -> Iterator[None]:
    original = getattr(LocalArchive, method)

    def crash(self: LocalArchive, key: str, *args: Any) -> Any:
        if key.startswith(prefix):
            raise Crash
        return original(self, key, *args)

    with monkeypatch.context() as patch:
        patch.setattr(LocalArchive, method, crash)
        with pytest.raises(Crash):
            yield


def assert_everything_back(clients: Any, settings: Any, features: dict[str, Any]) -> None:
    """u1's files current again, byte for byte with their metadata, `proposedBy` back on its
    features and its scoreboard entries back at their positions."""
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == sorted(FILES)
    for key, body in FILES.items():
        assert body_of(clients, settings, key) == (body, {"k": key}, "text/plain")
    db = clients.dynamodb
    assert scan_all(db, settings.features_table) == features
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == WEEK
    assert get_item(db, settings.scoreboards_table, "month")["users"]["L"] == MONTH


def assert_one_deletion_restorable(clients: Any, settings: Any, groups: int) -> None:
    """One `deleted` event with the counts of the whole deletion, even after the journals left
    are reconciled by a further run; and a restore brings back everything."""
    late = reconcile(
        archive(clients, settings),
        clients.dynamodb,
        settings.users_table,
        "third",
        builtin_map(settings),
    )
    assert late.recorded == [] and journals(clients, settings) == []
    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert (event["files"], event["features"], event["scoreboard_entries"]) == (3, 2, 3)
    assert len(event["manifests"]) == groups
    result = restore(clients, settings, "u1")
    assert result["status"] == "restored", result
    assert result["restored"] == {"item": 1, "files": 3, "features": 2, "scoreboards": 3}
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == sorted(FILES)
    db = clients.dynamodb
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == WEEK
    assert get_item(db, settings.scoreboards_table, "month")["users"]["L"] == MONTH


@pytest.mark.parametrize(
    ("operation", "table"),
    [
        ("DeleteObjects", None),  # archived, nothing removed yet
        ("UpdateItem", "features"),  # files removed
        ("UpdateItem", "scoreboards"),  # files and features removed
        ("DeleteItem", "users"),  # everything but the user item removed
    ],
)
def test_crash_before_the_user_item_is_finished_and_recorded_once(aws, operation, table):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    client = clients.s3 if operation == "DeleteObjects" else clients.dynamodb
    with dies_before(client, operation, table):
        run_cascade(clients, settings, as_of, ["u1"], run_id="crashed")
    assert ledger(clients, settings, "u1") == [] and journals(clients, settings)
    assert get_item(clients.dynamodb, settings.users_table, "u1") is not None

    next_run(clients, settings, as_of, ["u1"], "second")

    assert get_item(clients.dynamodb, settings.users_table, "u1") is None
    assert_one_deletion_restorable(clients, settings, groups=2)
    assert len({group_of(key) for key in manifests(clients, settings)}) == 2


@pytest.mark.parametrize("window", [30, 0])
def test_crash_between_the_user_item_and_its_ledger_event(aws, monkeypatch, window):
    clients, base = aws
    settings = with_window(base, window)
    as_of = now_ms()
    seed(clients, settings, as_of)
    with archive_dies(monkeypatch, "create", "ledger/"):
        run_cascade(clients, settings, as_of, ["u1"], run_id="crashed")
    assert get_item(clients.dynamodb, settings.users_table, "u1") is None
    assert ledger(clients, settings, "u1") == []

    store = archive(clients, settings)
    data_map = builtin_map(settings)
    late = reconcile(store, clients.dynamodb, settings.users_table, "later", data_map)
    again = reconcile(store, clients.dynamodb, settings.users_table, "later-still", data_map)

    assert [user for user, _ in late.recorded] == ["u1"] and again.recorded == []
    [event] = ledger(clients, settings, "u1")
    assert (event["run_id"], event["recorded_by"]) == ("crashed", "later")
    # The crashed run never proved the deletion: the next run that settles does.
    assert journals(clients, settings) != []
    settled = settle(clients, settings, as_of, "a-later-run")
    assert settled.recorded_late == 0 and settled.verified == ["u1"]
    assert journals(clients, settings) == []
    [again_deleted, proof] = ledger(clients, settings, "u1")
    assert again_deleted == event
    assert (proof["event"], proof["run_id"]) == ("verified", "a-later-run")
    if window:
        assert_one_deletion_restorable(clients, settings, groups=1)
    else:
        assert event["restorable_until"] == event["at"]


def test_crash_after_the_ledger_event_before_the_journal_goes(aws, monkeypatch):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    with archive_dies(monkeypatch, "remove", "pending/"):
        run_cascade(clients, settings, as_of, ["u1"], run_id="crashed")
    # Both events were written: the deleted one, then the proof's.
    assert len(ledger(clients, settings, "u1")) == 2 and journals(clients, settings)

    late = reconcile(
        archive(clients, settings),
        clients.dynamodb,
        settings.users_table,
        "later",
        builtin_map(settings),
    )

    assert late.recorded == [] and journals(clients, settings) == []
    assert_one_deletion_restorable(clients, settings, groups=1)


@pytest.mark.parametrize("window", [30, 0])
@pytest.mark.parametrize(
    ("operation", "table"),
    [("UpdateItem", "features"), ("UpdateItem", "scoreboards"), ("DeleteItem", "users")],
)
def test_user_who_came_back_after_a_crash_gets_everything_back(aws, window, operation, table):
    clients, base = aws
    settings = with_window(base, window)
    as_of = now_ms()
    seed(clients, settings, as_of)
    before = {v["VersionId"] for v in versions_under(clients, settings, "u1/")}
    features = scan_all(clients.dynamodb, settings.features_table)
    with dies_before(clients.dynamodb, operation, table):
        run_cascade(clients, settings, as_of, ["u1"], run_id="crashed")
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == []  # files hidden
    clients.dynamodb.update_item(
        TableName=settings.users_table,
        Key={"id": {"S": "u1"}},
        UpdateExpression="SET lastVisitAt = :now",
        ExpressionAttributeValues={":now": {"N": str(now_ms())}},
    )

    settled = settle(clients, settings, as_of, "later")

    assert settled.given_back == ["u1"] and settled.carried == {} and settled.failed == {}
    assert journals(clients, settings) == [] and ledger(clients, settings, "u1") == []
    assert_everything_back(clients, settings, features)
    # Only the markers the crashed run made are gone: every version is still there.
    assert {v["VersionId"] for v in versions_under(clients, settings, "u1/")} == before
    assert restore(clients, settings, "u1")["reason"].startswith("never deleted")
    # A further run finds nothing left to give back.
    again = settle(clients, settings, as_of, "later-still")
    assert again.given_back == [] and again.recorded_late == 0


def _approved(clients: Any, settings: Any, run_id: str) -> Recovery:
    """The archive as a run approved after the review of run `reviewed` opens it."""
    return Recovery(archive(clients, settings), run_id, approved_run_id="reviewed")


def test_the_deleted_event_of_an_approved_run_names_the_approved_run(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"], recovery=_approved(clients, settings, "run"))
    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert (event["event"], event["run_id"], event["approved_run_id"]) == (
        "deleted",
        "run",
        "reviewed",
    )


def test_a_run_without_approval_records_no_approved_run_id(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"], run_id="run")
    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert event["event"] == "deleted" and "approved_run_id" not in event


def test_an_event_recorded_late_carries_the_approval_of_the_run_that_deleted(aws, monkeypatch):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    with archive_dies(monkeypatch, "create", "ledger/"):
        run_cascade(clients, settings, as_of, ["u1"], recovery=_approved(clients, settings, "dead"))

    late = reconcile(
        archive(clients, settings),
        clients.dynamodb,
        settings.users_table,
        "later",
        builtin_map(settings),
    )

    [(_, recorded)] = late.recorded
    [event] = ledger(clients, settings, "u1")  # the dead run did not prove it: a settling run will
    assert event == {"user_id": "u1", **recorded}
    assert (event["run_id"], event["recorded_by"], event["approved_run_id"]) == (
        "dead",
        "later",
        "reviewed",
    )


def test_a_deletion_carried_on_is_recorded_with_the_approval_of_the_run_finishing_it(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    with dies_before(clients.dynamodb, "DeleteItem", "users"):
        run_cascade(clients, settings, as_of, ["u1"], recovery=_approved(clients, settings, "dead"))

    next_run(clients, settings, as_of, ["u1"], "second")  # without approval

    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert event["run_id"] == "second" and "approved_run_id" not in event
