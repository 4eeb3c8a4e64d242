"""The emails table keeps every address so people can be reached after their account is gone."""

import time
from typing import Any

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


def archive_addresses(client: Any, table: str, addresses: list[str]) -> None:
    """Make sure `{id: address}` exists for each address, never overwriting an existing item.

    Existing items are found with one BatchGetItem per 100 addresses; only the missing ones are
    written, 25 per BatchWriteItem.
    """
    unique = list(dict.fromkeys(addresses))
    existing: set[str] = set()
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"id": {"S": a}} for a in unique[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                "ProjectionExpression": "#id",
                "ExpressionAttributeNames": {"#id": "id"},
            }
        }
        for attempt in range(10):
            response = client.batch_get_item(RequestItems=request)
            existing.update(item["id"]["S"] for item in response["Responses"].get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if request:
            raise RuntimeError("emails table: BatchGetItem left keys unread")
    missing = [a for a in unique if a not in existing]
    for start in range(0, len(missing), BATCH_WRITE_LIMIT):
        writes: dict[str, Any] = {
            table: [
                {"PutRequest": {"Item": {"id": {"S": a}}}}
                for a in missing[start : start + BATCH_WRITE_LIMIT]
            ]
        }
        for attempt in range(10):
            writes = client.batch_write_item(RequestItems=writes).get("UnprocessedItems") or {}
            if not writes:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if writes:
            raise RuntimeError("emails table: BatchWriteItem left items unwritten")
