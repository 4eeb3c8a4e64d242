"""Consistent BatchGetItem by string id, with DynamoDB's unprocessed keys asked for again."""

import time
from collections.abc import Iterator
from typing import Any

BATCH_GET_LIMIT = 100
MAX_ATTEMPTS = 10

Item = dict[str, Any]


def consistent_batch_get(
    client: Any, table: str, ids: list[str], projection: dict[str, Any]
) -> Iterator[Item]:
    """Yield the items found for `ids` (deduplicated), 100 keys per request; missing ids are
    simply absent. Raises if DynamoDB still leaves keys unprocessed after backing off."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"id": {"S": key}} for key in unique[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                **projection,
            }
        }
        for attempt in range(MAX_ATTEMPTS):
            response = client.batch_get_item(RequestItems=request)
            yield from response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if request:
            left = len(request[table]["Keys"])
            raise RuntimeError(f"{table}: BatchGetItem left {left} keys unread")
