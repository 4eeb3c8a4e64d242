"""`cleanup-pipeline hold add|remove|list`: persistent holds in the holds table: a held user is
never warned or deleted while the hold lasts."""

import argparse
import json
import sys
from typing import Any

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.holds_table import delete_hold, put_hold, scan_holds
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.decisions import HOLDS_OFF, HoldError, check_user_id, new_hold
from cleanup_pipeline.core.settings import MissingConfigurationError, load_settings


def _table_and_client() -> tuple[str, Any]:
    settings = load_settings()
    if settings.holds_table is None:
        raise HoldError(HOLDS_OFF)
    return settings.holds_table, make_clients(settings).dynamodb


def _add(args: argparse.Namespace) -> dict[str, Any]:
    now = now_ms()
    hold = new_hold(args.user_id, args.reason, args.until, now)  # refused before any AWS call
    table, client = _table_and_client()
    replaced = put_hold(client, table, hold)
    return {
        "status": "added",
        "hold": hold.as_json(now),
        "replaced": None if replaced is None else replaced.as_json(now),
    }


def _remove(args: argparse.Namespace) -> dict[str, Any]:
    check_user_id(args.user_id, "USER_ID")  # refused before any AWS call
    table, client = _table_and_client()
    removed = delete_hold(client, table, args.user_id)
    if removed is None:
        return {"status": "not_held", "user_id": args.user_id}
    return {"status": "removed", "hold": removed.as_json(now_ms())}


def _list(_args: argparse.Namespace) -> dict[str, Any]:
    table, client = _table_and_client()
    now = now_ms()
    return {"holds": [hold.as_json(now) for hold in scan_holds(client, table)]}


def run_hold_command(args: argparse.Namespace) -> int:
    """Print the result as the last line (JSON); exit 1 on a refusal or a hold not found."""
    handlers = {"add": _add, "remove": _remove, "list": _list}
    try:
        result = handlers[args.hold_command](args)
    except (HoldError, MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        result = {"status": "refused", "error": str(error)}
    print(json.dumps(result))
    return 1 if result.get("status") in {"refused", "not_held"} else 0


def add_hold_parser(commands: Any) -> None:
    hold = commands.add_parser("hold", help="persistent holds: users no run warns or deletes")
    actions = hold.add_subparsers(dest="hold_command", required=True)
    add = actions.add_parser("add", help="hold a user (replaces any hold they have)")
    add.add_argument("user_id")
    add.add_argument("--reason", required=True, help="why the user is held (shown in reports)")
    add.add_argument("--until", help="ISO 8601 or epoch ms; default: until removed")
    remove = actions.add_parser("remove", help="remove a user's hold")
    remove.add_argument("user_id")
    actions.add_parser("list", help="every stored hold, with whether it is still active")
    hold.set_defaults(handler=run_hold_command)
