"""The proof of deletion against moto: each deleted user looked up again in every store after
the batch's deletions; a `verified` ledger event when nothing is left; a leftover written after
the cascade read a store fails the user, stays journalled, and the next run removes and proves
it; and what the proof costs in AWS calls."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cleanup_pipeline.actions.outcomes import DELETED, FAILED
from cleanup_pipeline.actions.proof import NotVerifiedError
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import FailureLog
from tests.support.aws_state import get_item, keys_under
from tests.support.cascade import outcome_of, run_cascade
from tests.support.items import board_entry, delete_candidate, feature, now_ms, s, scoreboard
from tests.support.recovery_world import (
    journals,
    ledger,
    seed,
    settle,
    versions_under,
    with_window,
)

ZEROS = {"files": 0, "features": 0, "scoreboards": 0}


@contextmanager
def right_after(client: Any, operation: str, action: Callable[[dict[str, Any]], bool]):
    """After each call of `operation` (its parameters given to `action`) until `action` says it
    acted: a write the app makes at that moment, with the test's own calls (not recorded)."""
    done: list[bool] = []
    service = client.meta.service_model.service_id.hyphenize()
    seen: list[dict[str, Any]] = []
    busy: list[bool] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    def after(**_: Any) -> None:
        if done or busy:  # the test's own write, made with the same client
            return
        busy.append(True)
        try:
            if action(seen[-1]):
                done.append(True)
        finally:
            busy.clear()

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", remember)
    client.meta.events.register(f"after-call.{service}.{operation}", after)
    try:
        yield done
    finally:
        client.meta.events.unregister(f"before-parameter-build.{service}.{operation}", remember)
        client.meta.events.unregister(f"after-call.{service}.{operation}", after)


@pytest.mark.parametrize("window", [30, 0])
def test_a_deleted_user_is_verified_in_every_store_after_the_deleted_event(aws, window):
    clients, base = aws
    settings = with_window(base, window)
    as_of = now_ms()
    seed(clients, settings, as_of)

    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert outcomes.verified == 1
    deleted, verified = ledger(clients, settings, "u1")
    assert deleted["event"] == "deleted"
    assert deleted["stores"] == {"files": 3, "features": 2, "scoreboards": 3}
    assert (deleted["files"], deleted["features"], deleted["scoreboard_entries"]) == (3, 2, 3)
    assert set(verified) == {"user_id", "event", "run_id", "at", "deletion_key", "stores"}
    assert (verified["event"], verified["run_id"], verified["stores"]) == (
        "verified",
        "test-run",
        ZEROS,
    )
    assert verified["deletion_key"] == deleted["deletion_key"]
    assert verified["at"] >= deleted["at"]
    assert journals(clients, settings) == []


def _put_into_folder(clients: Any, settings: Any, user_id: str) -> Callable[[dict], bool]:
    def put(params: dict[str, Any]) -> bool:
        keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        if not any(key.startswith(f"{user_id}/") for key in keys):
            return False
        clients.s3.put_object(
            Bucket=settings.public_bucket_name, Key=f"{user_id}/late.txt", Body=b"written late"
        )
        return True

    return put


@pytest.mark.parametrize("window", [30, 0])
def test_an_object_written_after_the_folder_was_deleted_fails_the_user_and_the_next_run_removes_it(
    aws, window
):
    clients, base = aws
    settings = with_window(base, window)
    as_of = now_ms()
    seed(clients, settings, as_of)
    failures = FailureLog()

    with right_after(clients.s3, "DeleteObjects", _put_into_folder(clients, settings, "u1")) as put:
        outcomes = run_cascade(clients, settings, as_of, ["u1"], on_failure=failures)

    assert put == [True]
    row = outcome_of(outcomes, "u1")
    assert (row["outcome"], row["step"], row["error"]) == (FAILED, "verify", "leftover in files")
    assert outcomes.verified == 0
    [(user_id, step, error)] = failures.calls
    assert (user_id, step, str(error)) == ("u1", "delete.verify", "leftover in files")
    assert isinstance(error, NotVerifiedError)
    # The item is gone: deleted, not verified; the journal keeps the user for the next run.
    assert get_item(clients.dynamodb, settings.users_table, "u1") is None
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted"]
    assert journals(clients, settings) != []

    settled = settle(clients, settings, as_of, "next-run")

    assert settled.verified == ["u1"] and settled.failed == {}
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == []
    if window == 0:
        assert versions_under(clients, settings, "u1/") == []
    deleted, verified = ledger(clients, settings, "u1")
    assert (deleted["event"], deleted["run_id"]) == ("deleted", "test-run")
    assert (verified["event"], verified["run_id"], verified["stores"]) == (
        "verified",
        "next-run",
        ZEROS,
    )
    assert journals(clients, settings) == []
    assert keys_under(clients.s3, settings.public_bucket_name, "u1x/") == ["u1x/keep.txt"]
    # Nothing left to do for a later run.
    later = settle(clients, settings, as_of, "later-run")
    assert later.verified == [] and later.failed == {} and later.recorded_late == 0


def _names_again(clients: Any, settings: Any, feature_id: str) -> Callable[[dict], bool]:
    def name(params: dict[str, Any]) -> bool:
        if params.get("TableName") != settings.features_table or params["Key"]["id"] != s(
            feature_id
        ):
            return False
        clients.dynamodb.update_item(
            TableName=settings.features_table,
            Key={"id": s(feature_id)},
            UpdateExpression="SET proposedBy = :u",
            ExpressionAttributeValues={":u": s("u1")},
        )
        return True

    return name


def _back_on_board(clients: Any, settings: Any, board: str) -> Callable[[dict], bool]:
    def add(params: dict[str, Any]) -> bool:
        if params.get("TableName") != settings.scoreboards_table or params["Key"]["id"] != s(board):
            return False
        clients.dynamodb.update_item(
            TableName=settings.scoreboards_table,
            Key={"id": s(board)},
            UpdateExpression="SET #u = list_append(#u, :e)",
            ExpressionAttributeNames={"#u": "users"},
            ExpressionAttributeValues={":e": {"L": [board_entry("u1", 4)]}},
        )
        return True

    return add


@pytest.mark.parametrize(
    ("store", "write"), [("features", _names_again), ("scoreboards", _back_on_board)]
)
def test_an_item_that_names_the_user_again_fails_the_user_and_the_next_run_removes_it(
    aws, store, write
):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    target = "f1" if store == "features" else "month"

    with right_after(clients.dynamodb, "UpdateItem", write(clients, settings, target)) as done:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert done == [True]
    row = outcome_of(outcomes, "u1")
    assert (row["outcome"], row["error"]) == (FAILED, f"leftover in {store}")
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted"]

    settled = settle(clients, settings, as_of, "next-run")

    assert settled.verified == ["u1"] and settled.failed == {}
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]
    db = clients.dynamodb
    assert "proposedBy" not in get_item(db, settings.features_table, "f1")
    assert "proposedBy" not in get_item(db, settings.features_table, "f2")
    assert get_item(db, settings.features_table, "f3")["proposedBy"] == s("u1x")
    for board in ("week", "month"):
        entries = get_item(db, settings.scoreboards_table, board)["users"]["L"]
        assert all(e["M"]["id"] != s("u1") for e in entries)
        assert entries != []
    assert journals(clients, settings) == []


def test_a_leftover_still_there_keeps_the_user_journalled_for_a_later_run(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    with right_after(clients.s3, "DeleteObjects", _put_into_folder(clients, settings, "u1")):
        run_cascade(clients, settings, as_of, ["u1"])

    def write_again(params: dict[str, Any]) -> bool:  # the app writes once more, after it
        return _put_into_folder(clients, settings, "u1")(params) and False

    with right_after(clients.s3, "DeleteObjects", write_again):
        settled = settle(clients, settings, as_of, "next-run")

    assert settled.failed == {"u1": "leftover in files"} and settled.verified == []
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted"]
    assert journals(clients, settings) != []
    assert settle(clients, settings, as_of, "third-run").verified == ["u1"]
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]


@pytest.fixture
def hundred(aws) -> Iterator[tuple[Any, Any, int, list[str]]]:
    """100 delete candidates, each with files, a proposed feature and entries on both boards."""
    clients, settings = aws
    as_of = now_ms()
    users = [f"p{i:03d}" for i in range(100)]
    batch_write(clients.dynamodb, settings.users_table, [delete_candidate(u, as_of) for u in users])
    batch_write(clients.dynamodb, settings.features_table, [feature(f"f-{u}", u) for u in users])
    entries = [board_entry(u, i) for i, u in enumerate(users)]
    batch_write(
        clients.dynamodb,
        settings.scoreboards_table,
        [scoreboard("week", entries), scoreboard("month", entries[:50])],
    )
    for user_id in users:
        for name in ("a.txt", "b.txt"):
            clients.s3.put_object(
                Bucket=settings.public_bucket_name, Key=f"{user_id}/{name}", Body=b"x"
            )
    yield clients, settings, as_of, users


@pytest.mark.parametrize("window", [30, 0])
def test_the_proof_costs_at_most_105_calls_for_100_deleted_users(hundred, window):
    clients, base, as_of, users = hundred
    settings = with_window(base, window)
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    for client in (clients.dynamodb, clients.s3):
        client.meta.events.register("provide-client-params.*.*", record)
    outcomes = run_cascade(clients, settings, as_of, users)

    assert [row["outcome"] for row in outcomes.rows] == [DELETED] * 100
    assert outcomes.verified == 100
    # The proof: every call after the batch's last write of the cascade (the ledger is local).
    writes = ("DeleteItem", "DeleteObjects")
    last = max(i for i, (name, _) in enumerate(calls) if name in writes)
    proof = [name for name, _ in calls[last + 1 :]]
    assert sorted(set(proof)) == ["BatchGetItem", "GetItem", "ListObjectVersions"]
    assert proof.count("ListObjectVersions") == 100  # one listing per user
    assert proof.count("GetItem") == 2  # one per board
    assert proof.count("BatchGetItem") == 2  # users, then the features they proposed
    assert len(proof) <= 1.05 * len(users)
    consistent = [p for name, p in calls[last + 1 :] if name == "BatchGetItem"]
    assert all(all(r["ConsistentRead"] for r in p["RequestItems"].values()) for p in consistent)
    assert all(p["ConsistentRead"] for name, p in calls[last + 1 :] if name == "GetItem")
    assert all(ledger(clients, settings, u)[-1]["event"] == "verified" for u in users[:3])
