"""References to users in other tables: features they proposed and scoreboard entries.

The features table is read once per run, keeping only the run's delete candidates; each
scoreboard is read right before it is pruned. Removals are conditional so that a concurrent
change, by the app or by another batch of the same run in another process, is never
overwritten.
"""

import random
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import Any

from cleanup_pipeline.aws.dynamodb import attempt_conditional

PROPOSED_BY = "proposedBy"  # the feature attribute naming its proposer


def features_by_proposer(
    client: Any, table: str, proposers: Collection[str]
) -> dict[str, list[str]]:
    """One Scan of the features table: proposer id -> ids of the features they proposed, for the
    given proposers only (the index of the whole table is not needed between steps)."""
    wanted = set(proposers)
    index: dict[str, list[str]] = defaultdict(list)
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="#id, #by",
        ExpressionAttributeNames={"#id": "id", "#by": PROPOSED_BY},
    )
    for page in pages:
        for item in page["Items"]:
            proposer = item.get(PROPOSED_BY, {}).get("S")
            if proposer in wanted:
                index[proposer].append(item["id"]["S"])
    return dict(index)


def unlink_feature(client: Any, table: str, feature_id: str, user_id: str) -> None:
    """Remove `proposedBy` from a feature if it still names the user; the feature stays.

    A feature names one proposer, so only the batch holding that user ever writes it."""
    attempt_conditional(
        client.update_item,
        TableName=table,
        Key={"id": {"S": feature_id}},
        UpdateExpression="REMOVE #by",
        ConditionExpression="#by = :user",
        ExpressionAttributeNames={"#by": PROPOSED_BY},
        ExpressionAttributeValues={":user": {"S": user_id}},
    )


def link_feature(client: Any, table: str, feature_id: str, user_id: str) -> bool:
    """Name the user as the feature's proposer again, only if the feature still exists and
    names no proposer; False otherwise (it went away or someone else was set meanwhile)."""
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key={"id": {"S": feature_id}},
        UpdateExpression="SET #by = :user",
        ConditionExpression="attribute_exists(#id) AND attribute_not_exists(#by)",
        ExpressionAttributeNames={"#id": "id", "#by": PROPOSED_BY},
        ExpressionAttributeValues={":user": {"S": user_id}},
    )


def read_list(client: Any, table: str, item_id: str, attribute: str) -> list[Any] | None:
    """Consistent read of the list `attribute` of one item (wire format); None when the item is
    absent, empty when it has no such list."""
    item = client.get_item(TableName=table, Key={"id": {"S": item_id}}, ConsistentRead=True).get(
        "Item"
    )
    return None if item is None else item.get(attribute, {}).get("L", [])


def read_scoreboard(client: Any, table: str, period: str) -> list[Any] | None:
    """Consistent read of one scoreboard's `users` list (wire format); None when it is absent."""
    return read_list(client, table, period, "users")


def entry_id(entry: Any, key: str = "id") -> str | None:
    """The id a list entry (a map) holds in `key`."""
    return entry.get("M", {}).get(key, {}).get("S")


def replace_scoreboard(
    client: Any, table: str, period: str, current: list[Any], entries: list[Any]
) -> bool:
    """Set the board's `users` list to `entries` (wire format), only if it still holds
    `current`, as read; False when the board changed meanwhile."""
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key={"id": {"S": period}},
        UpdateExpression="SET #users = :new",
        ConditionExpression="#users = :old",
        ExpressionAttributeNames={"#users": "users"},
        ExpressionAttributeValues={":new": {"L": entries}, ":old": {"L": current}},
    )


# Keeps each UpdateExpression well under DynamoDB's 4 KB expression limit.
_MAX_REMOVALS_PER_UPDATE = 40
# Condition failures tolerated per board: each one means someone else changed it meanwhile
# (the app, or another batch pruning the same board), and at least one of them progressed.
MAX_CONFLICTS = 12


def prune_scoreboard(
    client: Any,
    table: str,
    period: str,
    user_ids: Collection[str],
    entries: list[Any] | None = None,
    on_reread: Callable[[str, list[Any]], None] | None = None,
) -> int:
    """Remove every entry of `user_ids` from one scoreboard; other entries keep order and fields.
    Returns how many entries were removed.

    `entries` is the board as just read (read here when not given). Each update removes list
    positions on condition that they still hold those users, so a position that shifted never
    removes someone else's entry. If the board changed meanwhile the condition fails: it is read
    again and the removal retried, after a random pause so that batches pruning the same board in
    parallel stop colliding. `on_reread` sees each re-read board before the retried removal.
    """
    wanted, removed, conflicts = set(user_ids), 0, 0
    if entries is None:
        entries = read_scoreboard(client, table, period) or []
        if on_reread is not None:
            on_reread(period, entries)
    while True:
        positions = [i for i, entry in enumerate(entries) if entry_id(entry) in wanted]
        if not positions:
            return removed
        chunk = positions[-_MAX_REMOVALS_PER_UPDATE:]  # from the end: earlier indexes hold
        values = {f":u{n}": {"S": entry_id(entries[i])} for n, i in enumerate(chunk)}
        if attempt_conditional(
            client.update_item,
            TableName=table,
            Key={"id": {"S": period}},
            UpdateExpression="REMOVE " + ", ".join(f"#users[{i}]" for i in chunk),
            ConditionExpression=" AND ".join(
                f"#users[{i}].#id = :u{n}" for n, i in enumerate(chunk)
            ),
            ExpressionAttributeNames={"#users": "users", "#id": "id"},
            ExpressionAttributeValues=values,
        ):
            removed += len(chunk)
            entries = [entry for i, entry in enumerate(entries) if i not in set(chunk)]
            continue
        conflicts += 1
        if conflicts > MAX_CONFLICTS:
            raise RuntimeError(f"scoreboard {period!r} kept changing; entries not removed")
        time.sleep(random.uniform(0, min(0.05 * 2**conflicts, 1.0)))
        entries = read_scoreboard(client, table, period) or []
        if on_reread is not None:
            on_reread(period, entries)
