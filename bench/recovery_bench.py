"""What the restore window costs (SPEC §9), measured against in-process moto.

- archive calls per deleted user: the calls a deletion batch makes for its manifest and journal
  (the archive on S3, so that they are AWS calls), amortised over the batch; the whole-item
  re-read and the version listing replace calls the cascade made anyway (same counts). Ledger
  events are one PutObject per deleted user and are counted apart.
- purge calls per purged user: every AWS call of the purge of one expired batch.
- the time to restore a user with 1,000 files (plus their features and scoreboard entries).

    python -m bench.recovery_bench [--users 500]
"""

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from typing import Any

from moto import mock_aws

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import CascadeContext, delete_accounts
from cleanup_pipeline.actions.purge import purge_expired
from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.recovery_records import DAY_MS
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.emulator import LOCAL_ENV
from cleanup_pipeline.local.provision import provision

ARCHIVE_BUCKET = "bench-archive"


def _count(clients: Any, counter: Counter[str]) -> None:
    def on_call(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.split(".")[-1]
        key = str(params.get("Key") or params.get("Prefix") or "")
        bucket = params.get("Bucket")
        if bucket == ARCHIVE_BUCKET:
            area = key.split("/")[1] if "/" in key else key
            counter[f"archive:{area}:{operation}"] += 1
        else:
            counter[f"aws:{operation}"] += 1

    for client in (clients.dynamodb, clients.s3):
        client.meta.events.register("provide-client-params.*.*", on_call)


def _seed(clients: Any, settings: Any, ids: list[str], as_of: int, files: int = 1) -> None:
    """Delete candidates with `files` files each, all on one scoreboard."""
    sent = as_of - 40 * DAY_MS
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "id": {"S": uid},
                    "email": {"S": f"{uid}@example.com"},
                    "lastVisitAt": {"N": str(as_of - 100 * DAY_MS)},
                    "accountDeletionEmailSentAt": {"N": str(sent)},
                }
            }
        }
        for uid in ids
    ]
    for start in range(0, len(requests), 25):
        clients.dynamodb.batch_write_item(
            RequestItems={settings.users_table: requests[start : start + 25]}
        )
    for uid in ids:
        for n in range(files):
            key = f"{uid}/notes/{n:04d}.md"
            clients.s3.put_object(Bucket=settings.public_bucket_name, Key=key, Body=b"n")
    board = {"L": [{"M": {"id": {"S": uid}}} for uid in ids[:50]]}
    clients.dynamodb.put_item(
        TableName=settings.scoreboards_table, Item={"id": {"S": "week"}, "users": board}
    )


def measure(users: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        os.environ.update(LOCAL_ENV)
        os.environ["CLEANUP_REPORTS_DIR"] = tmp
        os.environ["CLEANUP_ARCHIVE_DIR"] = f"s3://{ARCHIVE_BUCKET}/archive"
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        clients.s3.create_bucket(Bucket=ARCHIVE_BUCKET)
        as_of = int(time.time() * 1000)
        ids = [f"bench-{i:05d}" for i in range(users)]
        _seed(clients, settings, ids, as_of)
        store = open_archive(settings.archive_location, clients.s3)
        counter: Counter[str] = Counter()
        _count(clients, counter)

        ctx = CascadeContext(
            clients.dynamodb, clients.s3, settings, as_of, Policy(), None, Recovery(store, "bench")
        )
        outcomes = delete_accounts(ctx, ids, {})
        deleted = outcomes.count("deleted")
        deletion = dict(counter)
        archive_calls = sum(
            v for k, v in deletion.items() if k.startswith(("archive:manifests", "archive:pending"))
        )
        ledger_calls = sum(v for k, v in deletion.items() if k.startswith("archive:ledger"))

        counter.clear()
        later = as_of + 31 * DAY_MS
        purged = purge_expired(store, clients.s3, clients.dynamodb, settings, "bench", now=later)
        purge_calls = dict(counter)

        # Restore: one user with 1,000 files, alone in the bucket (moto lists a prefix's
        # versions by walking the whole bucket, which AWS does not).
        big = "bench-big"
        _seed(clients, settings, [big], as_of, files=1000)
        delete_accounts(ctx, [big], {})
        counter.clear()
        restore_ctx = RestoreContext(clients.dynamodb, clients.s3, settings, store, "bench-restore")
        started = time.perf_counter()
        restored = restore_user(restore_ctx, big).summary()
        restore_s = time.perf_counter() - started
        restore_calls = dict(counter)
    return {
        "deleted_users": deleted,
        "archive_calls": archive_calls,
        "archive_calls_per_deleted_user": round(archive_calls / deleted, 4),
        "ledger_calls_per_deleted_user": round(ledger_calls / deleted, 4),
        "deletion_calls": deletion,
        "restore_files": restored["restored"]["files"],
        "restore_status": restored["status"],
        "restore_s": round(restore_s, 2),
        "restore_calls": restore_calls,
        "purged_users": purged.purged_users,
        "purge_calls_per_purged_user": round(sum(purge_calls.values()) / purged.purged_users, 3),
        "purge_calls": purge_calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500, help="users deleted in one batch")
    args = parser.parse_args(argv)
    result = measure(args.users)
    target = result["archive_calls_per_deleted_user"] <= 0.05
    print(
        f"archive calls per deleted user: {result['archive_calls_per_deleted_user']} "
        f"(target <= 0.05: {'MET' if target else 'MISSED'})"
    )
    print(f"ledger calls per deleted user: {result['ledger_calls_per_deleted_user']}")
    print(f"purge calls per purged user: {result['purge_calls_per_purged_user']}")
    print(f"restore of a user with {result['restore_files']} files: {result['restore_s']} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
