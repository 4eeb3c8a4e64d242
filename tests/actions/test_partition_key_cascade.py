"""Stores of kind `partition_key` through the whole cascade against moto, beside the app's own
stores: a table with a composite key (every item of the user) and a table reached through a
keys-only GSI. Deleted and recorded whole before the user item, counted in the ledger by name,
proved gone, given back to a user who came back, restored, purged with the manifest, and a
leftover written late removed and proved by the next run."""

from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.outcomes import DELETED
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.aws_state import ordered, table_items
from tests.support.cascade import outcome_of, run_cascade
from tests.support.data_maps import create_partition_key_stores, use_app_map_with
from tests.support.items import delete_candidate, s
from tests.support.recovery_world import (
    assert_deleted_and_proved,
    assert_left_over,
    comes_back_mid_cascade,
    next_run_proves,
    purge_after_the_window,
    restore,
    seeded,
)

EXTRA = """
  sessions:
    table: sessions
    partition_key: userId
    action: delete_items
  comments:
    table: comments
    index: byAuthor
    partition_key: authorId
"""
COUNTS = {"files": 3, "features": 2, "scoreboards": 3, "sessions": 30, "comments": 2}


def session(user: str, number: int, device: str = "phone") -> dict[str, Any]:
    return {"userId": s(user), "sessionId": s(f"{number:03d}"), "device": s(device)}


def comment(comment_id: str, author: str) -> dict[str, Any]:
    return {"id": s(comment_id), "authorId": s(author), "text": s(f"by {author}")}


@pytest.fixture
def world(aws, monkeypatch, tmp_path: Path):
    clients, settings = aws
    use_app_map_with(monkeypatch, tmp_path, EXTRA)
    db = clients.dynamodb
    create_partition_key_stores(db)
    # More sessions than one BatchWriteItem deletes; neighbours whose ids extend the user's.
    put_items(db, "sessions", [session("u1", n) for n in range(30)] + [session("u1x", 0)])
    put_items(db, "comments", [comment("c1", "u1"), comment("c2", "u1"), comment("c3", "u10")])
    return clients, settings


def table(clients: Any, name: str) -> list[dict[str, Any]]:
    return table_items(clients.dynamodb, name)


@pytest.mark.parametrize("window", [30, 0])
def test_every_item_of_the_user_goes_is_counted_by_store_and_proved_gone(world, window) -> None:
    clients, settings, as_of = seeded(world, window)
    queries = record_params(clients.dynamodb, "Query")

    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    deleted = assert_deleted_and_proved(clients, settings, outcomes, COUNTS)
    assert table(clients, "sessions") == [session("u1x", 0)]
    assert table(clients, "comments") == [comment("c3", "u10")]
    assert (deleted["files"], deleted["features"], deleted["scoreboard_entries"]) == (3, 2, 3)
    # One Query per store and deleted user to find, one to prove.
    assert len(queries) == 4


def test_reads_stay_one_query_per_store_and_deleted_user_and_none_for_anyone_else(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    others = [delete_candidate(u, as_of) for u in ("u2", "u3")]
    put_items(clients.dynamodb, settings.users_table, others)
    put_items(clients.dynamodb, "sessions", [session(u, n) for u in ("u2", "u3") for n in (1, 2)])
    calls = {
        name: record_params(clients.dynamodb, name)
        for name in ("Query", "DescribeTable", "BatchWriteItem")
    }

    outcomes = run_cascade(clients, settings, as_of, ["u1", "u2", "u3"])

    assert [outcome_of(outcomes, u)["outcome"] for u in ("u1", "u2", "u3")] == [DELETED] * 3
    queried = [q["ExpressionAttributeValues"][":user"]["S"] for q in calls["Query"]]
    # Per store and user: one Query to find, one to prove; none for the neighbours.
    assert sorted(queried) == sorted(["u1", "u2", "u3"] * 4)
    assert sorted(d["TableName"] for d in calls["DescribeTable"]) == ["comments", "sessions"]
    # 34 sessions and 2 comments in requests of at most 25 deletes shared by the batch.
    assert len(calls["BatchWriteItem"]) == 3
    assert table(clients, "sessions") == [session("u1x", 0)]


def test_a_restore_puts_each_item_back_whole_where_nothing_took_its_place(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    sessions, comments = table(clients, "sessions"), table(clients, "comments")
    run_cascade(clients, settings, as_of, ["u1"])
    taken = session("u1", 7, device="laptop")  # written by the app since the deletion
    put_items(clients.dynamodb, "sessions", [taken])

    assert restore(clients, settings, "u1", dry_run=True)["restored"]["sessions"] == 30
    summary = restore(clients, settings, "u1")

    assert summary["status"] == "restored"
    assert (summary["restored"]["sessions"], summary["restored"]["comments"]) == (29, 2)
    assert summary["skipped"]["sessions"] == 1
    assert "another item took its place" in summary["skipped"]["why"]["sessions"][0]
    assert table(clients, "sessions") == ordered(
        [taken if i == session("u1", 7) else i for i in sessions]
    )
    assert table(clients, "comments") == comments


@pytest.mark.parametrize("window", [30, 0])
def test_a_user_who_comes_back_mid_cascade_gets_every_item_back(world, window) -> None:
    clients, settings, as_of = seeded(world, window)

    comes_back_mid_cascade(clients, settings, as_of, "sessions", "comments")


def test_the_purge_removes_the_manifest_that_holds_the_items(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    run_cascade(clients, settings, as_of, ["u1"])

    purge_after_the_window(clients, settings)


def test_an_item_written_after_the_removal_fails_the_user_and_the_next_run_removes_it(
    world,
) -> None:
    clients, settings, as_of = seeded(world, 30)
    late = session("u1", 99, device="written late")
    done: list[bool] = []

    def app_writes(**_: Any) -> None:
        if not done:
            done.append(True)
            put_items(clients.dynamodb, "sessions", [late])

    # Right after the sessions' removal, before the user item goes: the proof finds it.
    event = "after-call.dynamodb.BatchWriteItem"
    clients.dynamodb.meta.events.register(event, app_writes)
    try:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])
    finally:
        clients.dynamodb.meta.events.unregister(event, app_writes)

    assert_left_over(clients, settings, outcomes, "leftover in sessions")

    next_run_proves(clients, settings, as_of, COUNTS)

    assert table(clients, "sessions") == [session("u1x", 0)]
