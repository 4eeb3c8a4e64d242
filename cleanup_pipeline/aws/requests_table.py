"""The requests table: key `id` (S); each request `{id, user_id, kind, ref, received_at, due_at,
status, reason, done_at, run_id}`, times as numbers (epoch ms), absent values not stored.

A user has at most one open erase request, however many operators or jobs open one at the same
time. The table's only key is the request's id, so beside each open erase request the table
holds a marker item keyed by the user (`open-erase#` and the SHA-256 of the user id, which keeps
the key short whatever the id's length), naming the open request. The request and its marker are
put in one transaction, each only if its key is free: of two concurrent openings one wins, and
the other finds the marker and returns the winner's request. A marker whose request is no longer
open (closed by a run that stopped before removing it, or edited by hand) is taken over, on the
condition that it still names that request. A check of the open requests before a put (even a
consistent Scan) would let two openings that check at the same moment both write.
"""

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.core.requests import (
    Request,
    RequestError,
    RequestKind,
    RequestStatus,
    oldest_first,
)

MARKER_PREFIX = "open-erase#"
_MISSING_TABLE = "ResourceNotFoundException"
# Openings that find a marker, then find it gone or taken over, try again this many times.
_ATTEMPTS = 5


def new_request_id() -> str:
    """A fresh request id: `req-` and 16 random hex digits."""
    return f"req-{secrets.token_hex(8)}"


def marker_id(user_id: str) -> str:
    return MARKER_PREFIX + hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def _missing(table: str) -> RequestError:
    return RequestError(
        f"REQUESTS_TABLE_NAME: table {table!r} does not exist: create it (key id, string) or "
        "name an existing table"
    )


def _is_missing_table(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == _MISSING_TABLE


def _item(request: Request) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": request.id},
        "user_id": {"S": request.user_id},
        "kind": {"S": str(request.kind)},
        "received_at": {"N": str(request.received_at)},
        "due_at": {"N": str(request.due_at)},
        "status": {"S": str(request.status)},
    }
    texts = {"ref": request.ref, "reason": request.reason, "run_id": request.run_id}
    item.update({name: {"S": text} for name, text in texts.items() if text})
    if request.done_at is not None:
        item["done_at"] = {"N": str(request.done_at)}
    return item


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {})
    return value.get("S") if isinstance(value, dict) else None


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name, {})
    text = value.get("N") if isinstance(value, dict) else None
    if isinstance(text, str) and text.isascii() and text.lstrip("-").isdigit() and len(text) < 20:
        return int(text)
    return None


def _request(item: dict[str, Any]) -> Request | None:
    """The request an item holds; None for a marker and for an item that lacks its user, kind,
    status or times (nothing a run could act on or a deadline be counted from)."""
    request_id, user_id = _text(item, "id"), _text(item, "user_id")
    received, due = _number(item, "received_at"), _number(item, "due_at")
    if not request_id or request_id.startswith(MARKER_PREFIX) or not user_id:
        return None
    try:
        kind = RequestKind(_text(item, "kind"))
        status = RequestStatus(_text(item, "status"))
    except ValueError:
        return None
    if received is None or due is None:
        return None
    return Request(
        id=request_id,
        user_id=user_id,
        kind=kind,
        received_at=received,
        due_at=due,
        status=status,
        ref=_text(item, "ref"),
        reason=_text(item, "reason"),
        done_at=_number(item, "done_at"),
        run_id=_text(item, "run_id"),
    )


def _get(client: Any, table: str, key: str) -> dict[str, Any] | None:
    return client.get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


def _put_with_marker(client: Any, table: str, request: Request, marker: dict[str, Any]) -> bool:
    """Put `request` and its user's marker together; False when the marker's condition failed
    (another request holds it, or it changed)."""
    free = "attribute_not_exists(id)"
    marker_put: dict[str, Any] = {
        "TableName": table,
        "Item": {"id": {"S": marker_id(request.user_id)}, "request_id": {"S": request.id}},
        **marker,
    }
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": marker_put},
                {"Put": {"TableName": table, "Item": _item(request), "ConditionExpression": free}},
            ]
        )
    except ClientError as error:
        if _is_missing_table(error):
            raise _missing(table) from None
        reasons = error.response.get("CancellationReasons") or []
        codes = [reason.get("Code") for reason in reasons]
        if error.response["Error"]["Code"] == "TransactionCanceledException" and codes[:1] == [
            "ConditionalCheckFailed"
        ]:
            return False
        raise
    return True


def open_request(client: Any, table: str, request: Request) -> tuple[Request, bool]:
    """Store the open erase request `request`, or return the user's erase request already open:
    (the request, whether this call opened it)."""
    if request.kind != RequestKind.ERASE or not request.is_open:
        raise ValueError("only an open erase request is opened here")
    marker: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
    for _ in range(_ATTEMPTS):
        if _put_with_marker(client, table, request, marker):
            return request, True
        found = _get(client, table, marker_id(request.user_id))
        if found is None:  # closed meanwhile: the marker is free again
            marker = {"ConditionExpression": "attribute_not_exists(id)"}
            continue
        held_by = _text(found, "request_id") or ""
        stored = _get(client, table, held_by) if held_by else None
        current = _request(stored) if stored else None
        if (
            current is not None
            and current.is_open
            and current.kind == RequestKind.ERASE
            and current.user_id == request.user_id
        ):
            return current, False
        # The marker names nothing open: take it over, unless someone else did first.
        marker = {
            "ConditionExpression": "request_id = :held" if held_by else "attribute_exists(id)",
            **({"ExpressionAttributeValues": {":held": {"S": held_by}}} if held_by else {}),
        }
    raise RequestError(
        f"the open erase request of user {request.user_id[:40]!r} kept changing while this one "
        "was opened; try again"
    )


def close_request(
    client: Any,
    table: str,
    request: Request,
    status: RequestStatus,
    *,
    reason: str,
    done_at: int,
    run_id: str | None,
) -> bool:
    """Mark the open `request` done or refused and free its user's marker; False when it was no
    longer open. A stop between the two writes leaves a marker naming a closed request, which the
    next opening takes over."""
    if status == RequestStatus.OPEN:
        raise ValueError("a request is closed as done or refused")
    values: dict[str, Any] = {
        ":status": {"S": str(status)},
        ":reason": {"S": reason},
        ":done_at": {"N": str(done_at)},
    }
    assignments = "#status = :status, reason = :reason, done_at = :done_at"
    if run_id:
        values[":run_id"] = {"S": run_id}
        assignments += ", run_id = :run_id"
    if not _update_open(client, table, request.id, assignments, values):
        return False
    if request.kind == RequestKind.ERASE:
        try:
            client.delete_item(
                TableName=table,
                Key={"id": {"S": marker_id(request.user_id)}},
                ConditionExpression="request_id = :id",
                ExpressionAttributeValues={":id": {"S": request.id}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
    return True


def scan_requests(client: Any, table: str) -> list[Request]:
    """Every request, oldest first (a consistent, paginated Scan); markers are not requests."""
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    try:
        items = [item for page in pages for item in page["Items"]]
    except ClientError as error:
        if _is_missing_table(error):
            raise _missing(table) from None
        raise
    return oldest_first(request for request in map(_request, items) if request is not None)


def require_table(client: Any, table: str) -> None:
    """Raise `RequestError` when the requests table does not exist (one consistent read of a
    key no request has), before a command writes anything elsewhere."""
    try:
        _get(client, table, MARKER_PREFIX)
    except ClientError as error:
        if _is_missing_table(error):
            raise _missing(table) from None
        raise


def record_request(client: Any, table: str, request: Request) -> None:
    """Store a request as it is (an export, open while its zip is written), only under a
    fresh id."""
    try:
        client.put_item(
            TableName=table, Item=_item(request), ConditionExpression="attribute_not_exists(id)"
        )
    except ClientError as error:
        if _is_missing_table(error):
            raise _missing(table) from None
        raise


def note_request(client: Any, table: str, request: Request, reason: str) -> bool:
    """Set the reason of `request` while it is open (why it is not done yet, for `request
    list`); False when it is no longer open."""
    return _update_open(client, table, request.id, "reason = :reason", {":reason": {"S": reason}})


def _update_open(
    client: Any, table: str, request_id: str, assignments: str, values: dict[str, Any]
) -> bool:
    """SET `assignments` on the request while it is open; False when it is no longer open."""
    try:
        client.update_item(
            TableName=table,
            Key={"id": {"S": request_id}},
            UpdateExpression=f"SET {assignments}",
            ConditionExpression="#status = :open",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={**values, ":open": {"S": str(RequestStatus.OPEN)}},
        )
    except ClientError as error:
        if _is_missing_table(error):
            raise _missing(table) from None
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def open_erasures(requests: Iterable[Request]) -> dict[str, str]:
    """{user id: request id} of the open erase requests among `requests` (oldest first), the
    oldest of a user's if several."""
    erasures: dict[str, str] = {}
    for request in requests:
        if request.is_open and request.kind == RequestKind.ERASE:
            erasures.setdefault(request.user_id, request.id)
    return erasures


def still_open_erasures(client: Any, table: str, asked: Mapping[str, str]) -> dict[str, str]:
    """{user id: request id} of the `asked` requests that are still open erase requests of that
    user, each read consistently right before it is acted on: a request closed meanwhile (by
    an operator or an overlapping run) no longer erases anyone."""
    still: dict[str, str] = {}
    for user_id, request_id in asked.items():
        try:
            found = _get(client, table, request_id)
        except ClientError as error:
            if _is_missing_table(error):
                raise _missing(table) from None
            raise
        current = _request(found) if found else None
        if (
            current is not None
            and current.is_open
            and current.kind == RequestKind.ERASE
            and current.user_id == user_id
        ):
            still[user_id] = request_id
    return still
