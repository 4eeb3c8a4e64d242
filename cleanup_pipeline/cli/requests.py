"""`cleanup-pipeline request erase|list|export`: requests from the people themselves in the
requests table, each with the date the law says it is due by, and the copy of a user's data."""

import argparse
import json
import sys
from typing import Any, NoReturn

from cleanup_pipeline.actions.export import answer_export_request
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.requests_table import new_request_id, open_request, scan_requests
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import DataMapError
from cleanup_pipeline.core.requests import (
    EXPORT_VARIABLE,
    REQUESTS_OFF,
    RequestError,
    RequestKind,
    new_request,
)
from cleanup_pipeline.core.settings import MissingConfigurationError, Settings, load_settings


def _table_and_client(settings: Settings) -> tuple[str, Any]:
    if settings.requests_table is None:
        raise RequestError(REQUESTS_OFF)
    return settings.requests_table, make_clients(settings).dynamodb


def _erase(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    now = now_ms()
    request = new_request(  # refused before any AWS call
        new_request_id(),
        args.user_id,
        RequestKind.ERASE,
        now=now,
        deadline_days=settings.request_deadline_days,
        received=args.received,
        ref=args.ref,
    )
    table, client = _table_and_client(settings)
    stored, opened = open_request(client, table, request)
    if opened:
        print(f"opened erase request {stored.id}, due {stored.as_json(now)['due']}")
    else:
        print(f"an erase request of this user is already open: {stored.id}; nothing was added")
    return {"request": stored.as_json(now)}


def _list(args: argparse.Namespace) -> dict[str, Any]:
    table, client = _table_and_client(load_settings())
    requests = scan_requests(client, table)
    now = now_ms()
    shown = [request for request in requests if request.is_open or not args.open]
    return {"requests": [request.as_json(now) for request in shown]}


def _export(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    done = answer_export_request(
        make_clients(settings),
        settings,
        args.user_id,
        args.out,
        ref=args.ref,
        received=args.received,
    )
    for line in done.lines():
        print(line)
    return done.as_json()


def run_request_command(args: argparse.Namespace) -> int:
    """Print the result as the last line (JSON); exit 1 on a refusal."""
    handlers = {"erase": _erase, "list": _list, "export": _export}
    try:
        result = handlers[args.request_command](args)
    except (RequestError, MissingConfigurationError, DataMapError, ValueError) as error:
        _refuse(str(error))
        return 1
    print(json.dumps(result))
    return 0


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"status": "refused", "error": message}))


def _usage_error(message: str) -> NoReturn:
    """argparse's refusal on one line: a request command or argument it does not know."""
    _refuse(f"request: {message}")
    sys.exit(2)


def add_request_parser(commands: Any) -> None:
    request = commands.add_parser(
        "request",
        help="requests from the people themselves: erasure and export, with their deadline",
    )
    request.error = _usage_error
    actions = request.add_subparsers(dest="request_command", required=True)
    erase = actions.add_parser("erase", help="open an erase request (returns an open one)")
    erase.error = _usage_error
    erase.add_argument("user_id")
    erase.add_argument("--ref", help="free text: the ticket or message the request came with")
    erase.add_argument("--received", help="ISO 8601 or epoch ms, not in the future; default: now")
    listing = actions.add_parser("list", help="every request, oldest first, with days left")
    listing.error = _usage_error
    listing.add_argument("--open", action="store_true", help="only the open requests")
    export = actions.add_parser("export", help="write one zip of everything the user has")
    export.error = _usage_error
    export.add_argument("user_id")
    export.add_argument(
        "--out", help=f"a private local folder or s3://bucket/prefix (default: {EXPORT_VARIABLE})"
    )
    export.add_argument("--ref", help="free text: the ticket or message the request came with")
    export.add_argument("--received", help="ISO 8601 or epoch ms, not in the future; default: now")
    request.set_defaults(handler=run_request_command)
