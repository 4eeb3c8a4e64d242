"""References to users in other tables: features they proposed and scoreboard entries.

Both tables are read once per run; removals are conditional so that a concurrent change by the
app is never overwritten.
"""

import time
from collections import defaultdict
from typing import Any

from cleanup_pipeline.aws.conditions import attempt_conditional


def features_by_proposer(client: Any, table: str) -> dict[str, list[str]]:
    """One Scan of the features table: proposer id -> ids of the features they proposed."""
    index: dict[str, list[str]] = defaultdict(list)
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="#id, #by",
        ExpressionAttributeNames={"#id": "id", "#by": "proposedBy"},
    )
    for page in pages:
        for item in page["Items"]:
            proposer = item.get("proposedBy", {}).get("S")
            if proposer:
                index[proposer].append(item["id"]["S"])
    return dict(index)


def unlink_feature(client: Any, table: str, feature_id: str, user_id: str) -> None:
    """Remove `proposedBy` from a feature if it still names the user; the feature stays."""
    attempt_conditional(
        client.update_item,
        TableName=table,
        Key={"id": {"S": feature_id}},
        UpdateExpression="REMOVE #by",
        ConditionExpression="#by = :user",
        ExpressionAttributeNames={"#by": "proposedBy"},
        ExpressionAttributeValues={":user": {"S": user_id}},
    )


def read_scoreboards(client: Any, table: str, periods: tuple[str, ...]) -> dict[str, list[Any]]:
    """Consistent read of every scoreboard: period -> its `users` list (wire format)."""
    boards: dict[str, list[Any]] = {}
    for period in periods:
        item = client.get_item(TableName=table, Key={"id": {"S": period}}, ConsistentRead=True).get(
            "Item"
        )
        if item is not None:
            boards[period] = item.get("users", {}).get("L", [])
    return boards


def entry_id(entry: Any) -> str | None:
    return entry.get("M", {}).get("id", {}).get("S")


# Keeps each UpdateExpression well under DynamoDB's 4 KB expression limit.
_MAX_REMOVALS_PER_UPDATE = 40


def prune_scoreboard(
    client: Any, table: str, period: str, entries: list[Any], user_ids: set[str]
) -> list[Any]:
    """Remove every entry of `user_ids` from one scoreboard; other entries keep order and fields.

    Each update removes list positions on condition that they still hold those users; if the app
    changed the board meanwhile, it is re-read and the removal retried. Returns the new list.
    """
    for attempt in range(8):
        positions = [i for i, entry in enumerate(entries) if entry_id(entry) in user_ids]
        if not positions:
            return entries
        batch = positions[-_MAX_REMOVALS_PER_UPDATE:]  # from the end, so earlier indexes hold
        values = {f":u{n}": {"S": entry_id(entries[i])} for n, i in enumerate(batch)}
        removed = attempt_conditional(
            client.update_item,
            TableName=table,
            Key={"id": {"S": period}},
            UpdateExpression="REMOVE " + ", ".join(f"#users[{i}]" for i in batch),
            ConditionExpression=" AND ".join(
                f"#users[{i}].#id = :u{n}" for n, i in enumerate(batch)
            ),
            ExpressionAttributeNames={"#users": "users", "#id": "id"},
            ExpressionAttributeValues=values,
        )
        if removed:
            entries = [entry for i, entry in enumerate(entries) if i not in set(batch)]
            continue
        time.sleep(min(0.05 * 2**attempt, 1.0))
        entries = read_scoreboards(client, table, (period,)).get(period, [])
    raise RuntimeError(f"scoreboard {period!r} kept changing; entries not removed")
