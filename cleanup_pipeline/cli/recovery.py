"""`cleanup-pipeline restore USER_ID [--dry-run]` and `cleanup-pipeline ledger USER_ID`."""

import argparse
import json
import sys
import uuid
from typing import Any

from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import shared_clients
from cleanup_pipeline.aws.stores import checked_data_map
from cleanup_pipeline.core.decisions import check_user_id
from cleanup_pipeline.core.recovery import KINDS, REFUSED
from cleanup_pipeline.core.settings import MissingConfigurationError, load_settings


def _restore(args: argparse.Namespace) -> int:
    try:
        check_user_id(args.user_id, "USER_ID")  # before any AWS call
        settings = load_settings()
        clients = shared_clients(settings)
        data_map = checked_data_map(clients, settings)  # before anything is put back
        ctx = RestoreContext(
            clients.dynamodb,
            clients.s3,
            settings,
            open_archive(settings.archive_location, clients.s3, existing=True),
            f"cli-restore-{uuid.uuid4().hex}",
            data_map,
        )
        summary: dict[str, Any] = restore_user(ctx, args.user_id, args.dry_run).summary()
    except (MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        zero = dict.fromkeys(KINDS, 0)
        summary = {
            "user_id": args.user_id,
            "status": REFUSED,
            "reason": str(error),
            "restored": zero,
            "skipped": {**zero, "why": {}},
        }
    print(f"{summary['status']}: {summary['reason']}")
    for kind, reasons in summary["skipped"]["why"].items():
        for reason in reasons:
            print(f"  skipped {kind}: {reason}")
    print(json.dumps(summary))
    return 1 if summary["status"] == REFUSED else 0


def _ledger(args: argparse.Namespace) -> int:
    try:
        check_user_id(args.user_id, "USER_ID")
        settings = load_settings()
        s3 = shared_clients(settings).s3 if settings.archive_location.startswith("s3://") else None
        store = open_archive(settings.archive_location, s3, existing=True)
        events = read_ledger(store, args.user_id)
    except (MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"user_id": args.user_id, "events": events}))
    return 0


def add_commands(commands: Any) -> None:
    restore = commands.add_parser(
        "restore", help="bring back a deleted user within the restore window"
    )
    restore.add_argument("user_id")
    restore.add_argument("--dry-run", action="store_true", help="say what would be restored")
    restore.set_defaults(handler=_restore)
    ledger = commands.add_parser("ledger", help="the deletion ledger of one user (JSON)")
    ledger.add_argument("user_id")
    ledger.set_defaults(handler=_ledger)
