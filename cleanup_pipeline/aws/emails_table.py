"""The emails table keeps every address so people can be reached after their account is gone."""

from typing import Any

from cleanup_pipeline.aws.batch_reads import consistent_batch_get
from cleanup_pipeline.aws.conditions import attempt_conditional


def archive_addresses(client: Any, table: str, addresses: list[str]) -> None:
    """Make sure `{id: address}` exists for each address, never overwriting an existing item.

    Existing items are found with one BatchGetItem per 100 addresses; only the missing ones are
    written, each with a condition that it still does not exist.
    """
    unique = list(dict.fromkeys(addresses))
    projection = {"ProjectionExpression": "#id", "ExpressionAttributeNames": {"#id": "id"}}
    existing = {item["id"]["S"] for item in consistent_batch_get(client, table, unique, projection)}
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
