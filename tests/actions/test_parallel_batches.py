"""Batches of one run pruning the same scoreboards at the same time, as they do when the
multiprocess executor runs them side by side: every batch removes exactly its own entries, a
refusal caused by another batch is re-read and retried, never a user's failure."""

import threading
from typing import Any

import boto3
import pytest

from cleanup_pipeline.actions.cascade import confirm_candidates, delete_accounts, prune_scoreboards
from cleanup_pipeline.actions.outcomes import DELETED, Outcomes
from cleanup_pipeline.aws import references
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.local.emulator import make_conditional_writes_atomic
from tests.support.aws_calls import record_params
from tests.support.aws_state import get_item
from tests.support.cascade import cascade_context
from tests.support.items import board_entry, delete_candidate, now_ms, s, scoreboard


def board(db: Any, table: str, period: str) -> list[dict[str, Any]]:
    return get_item(db, table, period)["users"]["L"]


def test_another_batch_pruning_first_shifts_positions_and_this_batch_rereads(aws) -> None:
    clients, settings = aws
    db, table, as_of = clients.dynamodb, settings.scoreboards_table, now_ms()
    batch_write(db, settings.users_table, [delete_candidate(u, as_of) for u in ("u1", "u2")])
    entries = [board_entry("a", 5), board_entry("u2", 4), board_entry("u1", 3), board_entry("b", 2)]
    batch_write(db, table, [scoreboard("week", entries)])
    ctx = cascade_context(clients, settings, as_of)
    mine = confirm_candidates(ctx, ["u1"])
    other = boto3.client("dynamodb", region_name=settings.aws_region)
    updates = record_params(db, "UpdateItem")
    interleaved: list[int] = []

    def other_batch_prunes_first(params: dict[str, Any], **_: Any) -> None:
        if not interleaved:  # between this batch's read of the board and its update
            interleaved.append(references.prune_scoreboard(other, table, "week", {"u2"}))

    db.meta.events.register("before-parameter-build.dynamodb.UpdateItem", other_batch_prunes_first)
    batch = prune_scoreboards(ctx, mine)

    assert interleaved == [1]
    # Position 2 held u1 when read; after the other batch's removal it holds b. The condition
    # refused the update, so b stayed, and the retry removed u1 at its new position.
    assert [u["UpdateExpression"] for u in updates] == ["REMOVE #users[2]", "REMOVE #users[1]"]
    assert board(db, table, "week") == [entries[0], entries[3]]
    assert batch.outcomes.rows == [] and set(batch.items) == {"u1"}


def test_batches_in_parallel_remove_exactly_their_entries_from_shared_boards(aws) -> None:
    make_conditional_writes_atomic()  # as DynamoDB: a conditional write is one atomic step
    clients, settings = aws
    db, table, as_of = clients.dynamodb, settings.scoreboards_table, now_ms()
    doomed = [f"d{i:02d}" for i in range(24)]
    batch_write(db, settings.users_table, [delete_candidate(u, as_of) for u in doomed])
    kept = {p: [board_entry(f"{p}-k{i:02d}", i) for i in range(30)] for p in ("week", "month")}
    shared = {}
    for period, keep in kept.items():
        # Kept entries interleaved with every doomed user's, some listed twice.
        mixed = [e for i, k in enumerate(keep) for e in (k, board_entry(doomed[i % 24], i))]
        shared[period] = [*mixed, board_entry(doomed[0], 99)]
    batch_write(db, table, [scoreboard(p, entries) for p, entries in shared.items()])
    batches = [doomed[i : i + 4] for i in range(0, 24, 4)]
    start = threading.Barrier(len(batches), timeout=30)
    done: list[Outcomes] = []

    def run(batch: list[str]) -> None:
        # Each batch with its own client, as each step process builds its own; all batches
        # start pruning at the same moment, with their first board read.
        own = boto3.client("dynamodb", region_name=settings.aws_region)
        started: list[int] = []

        def first_board_read(**_: Any) -> None:  # a value returned would replace the response
            if not started:
                started.append(start.wait())

        own.meta.events.register("before-call.dynamodb.GetItem", first_board_read)
        ctx = cascade_context(
            type(clients)(dynamodb=own, s3=clients.s3, sesv2=clients.sesv2), settings, as_of
        )
        done.append(delete_accounts(ctx, batch, {}))

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(done) == len(batches)
    rows = [row for outcomes in done for row in outcomes.rows]
    assert sorted((row["id"], row["outcome"]) for row in rows) == [(u, DELETED) for u in doomed]
    for period, keep in kept.items():
        assert board(db, table, period) == keep, period


def test_a_board_that_never_stops_changing_fails_its_users_after_a_bounded_retry(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = references.MAX_CONFLICTS
    clients, settings = aws
    db, table, as_of = clients.dynamodb, settings.scoreboards_table, now_ms()
    batch_write(db, settings.users_table, [delete_candidate("u1", as_of)])
    batch_write(db, table, [scoreboard("week", [board_entry("a", 2), board_entry("u1", 1)])])
    app = boto3.client("dynamodb", region_name=settings.aws_region)
    pauses: list[float] = []
    monkeypatch.setattr(references.time, "sleep", pauses.append)

    def app_inserts_before_every_update(params: dict[str, Any], **_: Any) -> None:
        app.update_item(
            TableName=table,
            Key={"id": s("week")},
            UpdateExpression="SET #u = list_append(:new, #u)",
            ExpressionAttributeNames={"#u": "users"},
            ExpressionAttributeValues={":new": {"L": [board_entry(f"n{len(pauses)}", 0)]}},
        )

    db.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", app_inserts_before_every_update
    )
    updates = record_params(db, "UpdateItem")
    ctx = cascade_context(clients, settings, as_of)
    batch = prune_scoreboards(ctx, confirm_candidates(ctx, ["u1"]))

    assert len(updates) == bound + 1 and len(pauses) == bound
    assert all(0 <= pause <= 1.0 for pause in pauses)
    assert [(r["id"], r["outcome"], r["step"]) for r in batch.outcomes.rows] == [
        ("u1", "failed", "scoreboards")
    ]
    entries = board(db, table, "week")
    assert [e["M"]["id"]["S"] for e in entries][-2:] == ["a", "u1"]  # nobody else's removed
