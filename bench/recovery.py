"""What the restore window costs, on in-process moto with the archive on S3 (so that its writes
are AWS calls): the archive's calls per deleted user (manifest and journal, per batch), the
ledger's, the purge's per purged user, and the time to restore a user with 1,000 files."""

import time
from collections import Counter
from typing import Any

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import CascadeContext, delete_accounts
from cleanup_pipeline.actions.purge import purge_expired
from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.decisions import DAY_MS, Policy
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.local.provision import provision

ARCHIVE_BUCKET = "bench-archive"
FIGURES = (
    ("archive_calls_per_deleted_user", "archive calls per deleted user (manifest, journal)"),
    ("ledger_calls_per_deleted_user", "ledger calls per deleted user (one PutObject each)"),
    ("purge_calls_per_purged_user", "purge calls per purged user"),
    ("restore_files", "files of the restored user"),
    ("restore_s", "restore of that user, seconds"),
)


def _count_calls(clients: AwsClients, counter: Counter[str]) -> None:
    """Archive calls by area of the archive (`archive:<area>:<operation>`), the others by
    operation (`aws:<operation>`)."""

    def on_call(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.split(".")[-1]
        if params.get("Bucket") == ARCHIVE_BUCKET:
            key = str(params.get("Key") or params.get("Prefix") or "")
            counter[f"archive:{key.split('/')[1] if '/' in key else key}:{operation}"] += 1
        else:
            counter[f"aws:{operation}"] += 1

    for client in (clients.dynamodb, clients.s3):
        client.meta.events.register("provide-client-params.*.*", on_call)


def _seed(clients: AwsClients, settings: Settings, ids: list[str], as_of: int, files: int) -> None:
    """Delete candidates with `files` files each, the first 50 on one scoreboard."""
    sent, visit = as_of - 40 * DAY_MS, as_of - 100 * DAY_MS
    users = [
        {
            "id": {"S": uid},
            "email": {"S": f"{uid}@example.com"},
            "lastVisitAt": {"N": str(visit)},
            "accountDeletionEmailSentAt": {"N": str(sent)},
        }
        for uid in ids
    ]
    batch_write(clients.dynamodb, settings.users_table, users)
    for uid in ids:
        for n in range(files):
            clients.s3.put_object(
                Bucket=settings.public_bucket_name, Key=f"{uid}/notes/{n:04d}.md", Body=b"n"
            )
    board = {"L": [{"M": {"id": {"S": uid}}} for uid in ids[:50]]}
    clients.dynamodb.put_item(
        TableName=settings.scoreboards_table, Item={"id": {"S": "week"}, "users": board}
    )


def measure(users: int) -> dict[str, Any]:
    """Inside `mock_aws`, with the job's environment set and the archive in `ARCHIVE_BUCKET`."""
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    clients.s3.create_bucket(Bucket=ARCHIVE_BUCKET)
    as_of = int(time.time() * 1000)
    ids = [f"bench-{i:05d}" for i in range(users)]
    _seed(clients, settings, ids, as_of, files=1)
    store = open_archive(settings.archive_location, clients.s3)
    counter: Counter[str] = Counter()
    _count_calls(clients, counter)
    recovery = Recovery(store, "bench")
    ctx = CascadeContext(clients.dynamodb, clients.s3, settings, as_of, Policy(), None, recovery)
    deleted = delete_accounts(ctx, ids, {}).count("deleted")
    archive = sum(
        n for k, n in counter.items() if k.startswith(("archive:manifests", "archive:pending"))
    )
    ledger = sum(n for k, n in counter.items() if k.startswith("archive:ledger"))

    counter.clear()
    later = as_of + 31 * DAY_MS
    purged = purge_expired(store, clients.s3, clients.dynamodb, settings, "bench", now=later)
    purge_calls = sum(counter.values())

    big = "bench-big"
    _seed(clients, settings, [big], as_of, files=1000)
    delete_accounts(ctx, [big], {})
    started = time.perf_counter()
    context = RestoreContext(clients.dynamodb, clients.s3, settings, store, "bench-restore")
    restored = restore_user(context, big).summary()
    return {
        "archive_calls_per_deleted_user": round(archive / deleted, 4),
        "ledger_calls_per_deleted_user": round(ledger / deleted, 4),
        "purge_calls_per_purged_user": round(purge_calls / purged.purged_users, 3),
        "restore_files": restored["restored"]["files"],
        "restore_s": round(time.perf_counter() - started, 2),
    }
