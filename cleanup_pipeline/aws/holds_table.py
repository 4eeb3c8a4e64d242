"""The holds table: key `id` (S), `reason` (S), `until` (N epoch ms, optional).

Reads are fail-safe: an item whose `reason` or `until` cannot be read still holds its user
(until removed when `until` is not a whole number of epoch ms from 1970 to before year 9999),
so a hand-edited item never exposes anyone, and the hold's `until` is listed as stored.
"""

import json
from typing import Any

from cleanup_pipeline.aws.dynamodb import projection, read_by_id
from cleanup_pipeline.core.as_of import in_range
from cleanup_pipeline.core.decisions import NO_REASON, Hold
from cleanup_pipeline.core.masking import scrub_emails

_PROJECTION = projection(("id", "reason", "until"))


def _hold(item: dict[str, Any]) -> Hold | None:
    user_id = item.get("id", {}).get("S")
    if not user_id:
        return None
    # Written by hand or by other tools too: an address in the reason never reaches a report.
    reason = scrub_emails(item.get("reason", {}).get("S", "").strip()) or NO_REASON
    if "until" not in item:
        return Hold(user_id, reason)
    stored = item["until"]
    text = stored.get("N") if isinstance(stored, dict) else None
    if isinstance(text, str) and text.isascii() and text.lstrip("-").isdigit():
        until = int(text) if len(text) < 20 else None  # longer: past year 9999 anyway
        if until is not None and in_range(until):
            return Hold(user_id, reason, until)
    # An unreadable end never ends the hold; it is shown as written, addresses masked.
    return Hold(user_id, reason, None, scrub_emails(_as_stored(stored)))


def _as_stored(value: Any) -> str:
    """A stored attribute value as text: a number or a string as written, anything else as
    its DynamoDB JSON."""
    if isinstance(value, dict) and len(value) == 1:
        [(kind, inner)] = value.items()
        if kind in {"N", "S"} and isinstance(inner, str):
            return inner
    return json.dumps(value, default=str, sort_keys=True)


def _holds(items: list[dict[str, Any]]) -> list[Hold]:
    return [hold for hold in map(_hold, items) if hold is not None]


def scan_holds(client: Any, table: str) -> list[Hold]:
    """Every stored hold, expired ones included (a consistent, paginated Scan)."""
    pages = client.get_paginator("scan").paginate(
        TableName=table, ConsistentRead=True, **_PROJECTION
    )
    return sorted(
        (hold for page in pages for hold in _holds(page["Items"])), key=lambda h: h.user_id
    )


def read_holds(client: Any, table: str, user_ids: list[str]) -> list[Hold]:
    """The stored holds of `user_ids`, read consistently (for a batch's re-read)."""
    return _holds(list(read_by_id(client, table, user_ids, ("reason", "until")).values()))


def put_hold(client: Any, table: str, hold: Hold) -> Hold | None:
    """Store `hold` (replacing any hold of that user); returns the hold it replaced."""
    item: dict[str, Any] = {"id": {"S": hold.user_id}, "reason": {"S": hold.reason}}
    if hold.until is not None:
        item["until"] = {"N": str(hold.until)}
    old = client.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD").get("Attributes")
    return _hold(old) if old else None


def delete_hold(client: Any, table: str, user_id: str) -> Hold | None:
    """Remove the user's hold; returns the hold removed, None when there was none."""
    old = client.delete_item(
        TableName=table, Key={"id": {"S": user_id}}, ReturnValues="ALL_OLD"
    ).get("Attributes")
    return _hold(old) if old else None
