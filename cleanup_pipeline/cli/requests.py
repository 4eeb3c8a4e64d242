"""`cleanup-pipeline request erase|list|export`: requests from the people themselves in the
requests table, each with the date the law says it is due by, and the copy of a user's data."""

import argparse
import json
import os
import sys
from typing import Any, NoReturn

from cleanup_pipeline.actions.export import check_destination, export_requested
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.requests_table import (
    new_request_id,
    open_request,
    require_table,
    scan_requests,
)
from cleanup_pipeline.aws.stores import require_stores
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import DataMapError, load_data_map
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
    """Everything is checked before the zip is written: the id, the destination, the requests
    table (when there is one), the data map and its stores, and that the user exists. Only
    reads are made in the app's stores; the export request (open, then done once the zip is in
    place) and the zip are the writes."""
    settings = load_settings()
    now = now_ms()
    request = new_request(  # the id and the request's fields checked before any AWS call
        new_request_id(),
        args.user_id,
        RequestKind.EXPORT,
        now=now,
        deadline_days=settings.request_deadline_days,
        received=args.received,
        ref=args.ref,
    )
    destination = (args.out or os.environ.get(EXPORT_VARIABLE) or "").strip()
    if not destination:
        raise RequestError(f"give --out DIR|s3://bucket/prefix, or set {EXPORT_VARIABLE}")
    check_destination(destination, settings)
    clients = make_clients(settings)
    if settings.requests_table is not None:
        require_table(clients.dynamodb, settings.requests_table)
    data_map = load_data_map(settings)  # export reads every kind: the cascade's gaps do not bar it
    require_stores(clients.dynamodb, clients.s3, settings, data_map)
    exported = export_requested(clients, settings, data_map, request, destination, now)
    if settings.requests_table is not None:
        print(f"export request {request.id} recorded as done")
    total = sum(exported.counts.values())
    print(f"exported {total} records and files from {len(exported.counts)} stores")
    return {"user_id": request.user_id, "export": exported.location, "counts": exported.counts}


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
