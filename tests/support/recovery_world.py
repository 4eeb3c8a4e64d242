"""A small world for the restore window, purge and ledger tests: one user with files (several
versions), features and scoreboard entries, a neighbour whose folder shares the prefix."""

import dataclasses
from typing import Any

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import Settled, settle_unfinished
from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import ArchiveStore, open_archive
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.data_map import load_data_map
from cleanup_pipeline.core.recovery import MANIFESTS, PENDING
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.cascade import cascade_context, run_cascade
from tests.support.items import (
    active_user,
    board_entry,
    delete_candidate,
    feature,
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
