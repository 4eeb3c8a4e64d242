"""The emails table keeps every address so people can be reached after their account is gone."""

import time
from typing import Any

from cleanup_pipeline.aws.conditions import attempt_conditional

BATCH_GET_LIMIT = 100


def archive_addresses(client: Any, table: str, addresses: list[str]) -> None:
    """Make sure `{id: address}` exists for each address, never overwriting an existing item.

    Existing items are found with one BatchGetItem per 100 addresses; only the missing ones are
    written, each with a condition that it still does not exist.
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
    for address in (a for a in unique if a not in existing):
        # Conditional, so an item the app wrote since the read is never overwritten. Most
        # addresses already exist (the app stores them at sign-up), so these puts are few.
        attempt_conditional(
            client.put_item,
            TableName=table,
            Item={"id": {"S": address}},
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": "id"},
        )
