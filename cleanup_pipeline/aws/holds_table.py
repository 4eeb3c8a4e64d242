"""The holds table (SPEC §10): key `id` (S), `reason` (S), `until` (N epoch ms, optional).

Reads are fail-safe: an item whose `reason` or `until` cannot be read still holds its user
(indefinitely when `until` is not a number), so a hand-edited item never exposes anyone.
"""

from typing import Any

from cleanup_pipeline.aws.batch_reads import consistent_batch_get
from cleanup_pipeline.core.holds import NO_REASON, Hold
from cleanup_pipeline.core.masking import scrub_emails

_PROJECTION = {
    "ProjectionExpression": "#id, #reason, #until",
    "ExpressionAttributeNames": {"#id": "id", "#reason": "reason", "#until": "until"},
}


def _hold(item: dict[str, Any]) -> Hold | None:
    user_id = item.get("id", {}).get("S")
    if not user_id:
        return None
    # Written by hand or by other tools too: an address in the reason never reaches a report.
    reason = scrub_emails(item.get("reason", {}).get("S", "").strip()) or NO_REASON
    until: int | None = None
    try:
        until = int(item["until"]["N"]) if "N" in item.get("until", {}) else None
    except ValueError:
        until = None  # an unreadable end never ends the hold
    return Hold(user_id, reason, until)


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
    return _holds(list(consistent_batch_get(client, table, user_ids, _PROJECTION)))


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
