"""A small world for the restore window, purge and ledger tests: one user with files (several
versions), features and scoreboard entries, a neighbour whose folder shares the prefix; and the
steps and checks those tests share (the user coming back, the purge, the proof and the next
run that settles what it found)."""

import dataclasses
from typing import Any

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import Settled, settle_unfinished
from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.actions.outcomes import DELETED, FAILED, KEPT, Outcomes
from cleanup_pipeline.actions.purge import PurgeCounts, purge_expired
from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import ArchiveStore, open_archive
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.data_map import DataMap, load_data_map
from cleanup_pipeline.core.recovery import DAY_MS, MANIFESTS, PENDING
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_state import table_items
from tests.support.cascade import cascade_context, outcome_of, run_cascade
from tests.support.items import (
    active_user,
    board_entry,
    delete_candidate,
    feature,
    n,
    now_ms,
    s,
    scoreboard,
)

WEEK = [board_entry("a", 9), board_entry("u1", 8), board_entry("b", 7), board_entry("u1", 1)]
MONTH = [board_entry("c", 3), board_entry("u1", 2)]
FILES = {"u1/a.txt": b"first", "u1/nested/b.bin": bytes(range(256)), "u1/c.txt": b"third"}


def with_window(settings: Settings, days: float) -> Settings:
    return dataclasses.replace(settings, restore_window_days=days)


def archive(clients: AwsClients, settings: Settings) -> ArchiveStore:
    return open_archive(settings.archive_location, clients.s3)


def seed(clients: AwsClients, settings: Settings, as_of: int) -> dict[str, Any]:
    """u1 to delete, with an extra attribute, files (one with an older version and metadata),
    two features, entries on two boards; neighbours u1x and u10 that must stay untouched."""
    db, s3, bucket = clients.dynamodb, clients.s3, settings.public_bucket_name
    user = delete_candidate("u1", as_of, name=s("Ann"), plan=s("free"))
    put_items(db, settings.users_table, [user, active_user("u1x", as_of)])
    s3.put_object(Bucket=bucket, Key="u1/a.txt", Body=b"older")
    for key, body in FILES.items():
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="text/plain", Metadata={"k": key}
        )
    s3.put_object(Bucket=bucket, Key="u1/gone-before.txt", Body=b"the user removed it")
    s3.delete_object(Bucket=bucket, Key="u1/gone-before.txt")
    for key in ("u1x/keep.txt", "u10/keep.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"neighbour")
    put_items(
        db,
        settings.features_table,
        [feature("f1", "u1", title=s("Dark mode")), feature("f2", "u1"), feature("f3", "u1x")],
    )
    put_items(
        db, settings.scoreboards_table, [scoreboard("week", WEEK), scoreboard("month", MONTH)]
    )
    return user


def seeded(world: tuple[AwsClients, Settings], window: float) -> tuple[AwsClients, Settings, int]:
    """The world's clients, its settings with a restore window of `window` days, and the time
    as of which u1 and its neighbours were just seeded."""
    clients, base = world
    settings = with_window(base, window)
    as_of = now_ms()
    seed(clients, settings, as_of)
    return clients, settings, as_of


def comes_back(
    clients: AwsClients, settings: Settings, user_id: str = "u1", at: int | None = None
) -> None:
    """The user signs in again (now, or at `at`): no longer a delete candidate."""
    clients.dynamodb.update_item(
        TableName=settings.users_table,
        Key={"id": s(user_id)},
        UpdateExpression="SET lastVisitAt = :now",
        ExpressionAttributeValues={":now": n(now_ms() if at is None else at)},
    )


def versions_under(clients: AwsClients, settings: Settings, prefix: str) -> list[dict]:
    pages = clients.s3.get_paginator("list_object_versions").paginate(
        Bucket=settings.public_bucket_name, Prefix=prefix
    )
    return [
        v for page in pages for kind in ("Versions", "DeleteMarkers") for v in page.get(kind, [])
    ]


def body_of(clients: AwsClients, settings: Settings, key: str) -> tuple[bytes, dict, str]:
    got = clients.s3.get_object(Bucket=settings.public_bucket_name, Key=key)
    return got["Body"].read(), got["Metadata"], got["ContentType"]


def restore(
    clients: AwsClients,
    settings: Settings,
    user_id: str,
    dry_run: bool = False,
    run_id: str = "restore-run",
) -> dict:
    store = archive(clients, settings)
    ctx = RestoreContext(
        clients.dynamodb, clients.s3, settings, store, run_id, load_data_map(settings)
    )
    return restore_user(ctx, user_id, dry_run).summary()


def ledger(clients: AwsClients, settings: Settings, user_id: str) -> list[dict[str, Any]]:
    return read_ledger(archive(clients, settings), user_id)


def store_counts(
    clients: AwsClients, settings: Settings, user_id: str, *stores: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """What the ledger counted in each of `stores` for the user's deletion, then for its proof."""
    deleted, verified = ledger(clients, settings, user_id)
    return (
        tuple(deleted["stores"][name] for name in stores),
        tuple(verified["stores"][name] for name in stores),
    )


def manifests(clients: AwsClients, settings: Settings) -> list[str]:
    return archive(clients, settings).keys(MANIFESTS)


def journals(clients: AwsClients, settings: Settings) -> list[str]:
    return archive(clients, settings).keys(PENDING)


def settle(clients: AwsClients, settings: Settings, as_of: int, run_id: str) -> Settled:
    """What a later run does first, whatever its guards decide, with the journals that runs
    which died left."""
    return settle_unfinished(cascade_context(clients, settings, as_of, run_id=run_id))


def next_run(
    clients: AwsClients, settings: Settings, as_of: int, user_ids: list[str], run_id: str
) -> Any:
    """A later run of the job: first what crashed runs left in their journals, then the cascade
    carrying on the deletions they began."""
    store = archive(clients, settings)
    late = settle(clients, settings, as_of, run_id)
    return run_cascade(
        clients, settings, as_of, user_ids, recovery=Recovery(store, run_id, late.carried)
    )


def purge(
    clients: AwsClients,
    settings: Settings,
    now: int,
    dry_run: bool = False,
    data_map: DataMap | None = None,
) -> PurgeCounts:
    """The purge as a run does it at `now` (with the built-in map unless `data_map`)."""
    return purge_expired(
        archive(clients, settings),
        clients.s3,
        clients.dynamodb,
        settings,
        "purge-run",
        dry_run=dry_run,
        now=now,
        data_map=data_map,
    )


def purge_after_the_window(
    clients: AwsClients, settings: Settings, data_map: DataMap | None = None
) -> PurgeCounts:
    """The purge a day after a 30-day window ended, checked to remove u1's one deletion: its
    manifest goes and its ledger ends with the purge."""
    assert manifests(clients, settings) != []
    counts = purge(clients, settings, now_ms() + 31 * DAY_MS, data_map=data_map)
    assert (counts.purged_users, counts.groups_removed) == (1, 1)
    assert manifests(clients, settings) == []
    events = [e["event"] for e in ledger(clients, settings, "u1")]
    assert events == ["deleted", "verified", "purged"]
    return counts


def assert_deleted_and_proved(
    clients: AwsClients, settings: Settings, outcomes: Outcomes, counts: dict[str, int]
) -> dict[str, Any]:
    """u1 deleted and proved by this run: the ledger counts `counts` by store, then none left,
    and no journal stays open. Returns the ledger's `deleted` event."""
    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert outcomes.verified == 1
    deleted, verified = ledger(clients, settings, "u1")
    assert deleted["stores"] == counts
    assert (verified["event"], verified["stores"]) == ("verified", dict.fromkeys(counts, 0))
    assert journals(clients, settings) == []
    return deleted


def comes_back_mid_cascade(
    clients: AwsClients, settings: Settings, as_of: int, *tables: str
) -> Outcomes:
    """The cascade for u1, who signs in again right before its user item goes: kept, each of
    `tables` as it was before the run, and nothing of the deletion left in the ledger."""
    before = {name: table_items(clients.dynamodb, name) for name in tables}
    outcomes = run_cascade(
        clients, settings, as_of, ["u1"], before_final_delete=lambda: comes_back(clients, settings)
    )
    assert outcome_of(outcomes, "u1")["outcome"] == KEPT
    assert {name: table_items(clients.dynamodb, name) for name in tables} == before
    assert ledger(clients, settings, "u1") == []
    return outcomes


def assert_left_over(
    clients: AwsClients, settings: Settings, outcomes: Outcomes, error: str
) -> None:
    """u1's proof found data written after its removal: failed with `error`, and the ledger
    holds the deletion alone."""
    row = outcome_of(outcomes, "u1")
    assert (row["outcome"], row["step"], row["error"]) == (FAILED, "verify", error)
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted"]


def next_run_proves(
    clients: AwsClients, settings: Settings, as_of: int, counts: dict[str, int]
) -> Settled:
    """The next run settling a deletion whose proof failed: u1's leftovers removed and proved
    gone by that run, in every store of `counts`, and no journal left."""
    settled = settle(clients, settings, as_of, "next-run")
    assert settled.verified == ["u1"] and settled.failed == {}
    _, verified = ledger(clients, settings, "u1")
    assert (verified["run_id"], verified["stores"]) == ("next-run", dict.fromkeys(counts, 0))
    assert journals(clients, settings) == []
    return settled
