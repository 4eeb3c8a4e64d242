"""References to users in other tables: features they proposed and scoreboard entries.

The features table is read once per run, keeping only the run's delete candidates; each
scoreboard is read right before it is pruned. Removals are conditional so that a concurrent
change, by the app or by another batch of the same run in another process, is never
overwritten.
"""

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from typing import Any

from cleanup_pipeline.aws.dynamodb import BATCH_GET_LIMIT, attempt_conditional, projection

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


def read_list(
    client: Any, table: str, item_id: str, attribute: str, key_name: str = "id"
) -> list[Any] | None:
    """Consistent read of the list `attribute` of the item whose key `key_name` is `item_id`
    (wire format); None when the item is absent, empty when it has no such list."""
    return list_at(client, table, {key_name: {"S": item_id}}, attribute)


def list_at(client: Any, table: str, key: dict[str, Any], attribute: str) -> list[Any] | None:
    """Consistent read of the list `attribute` of the item of `key` (its full key)."""
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return None if item is None else item.get(attribute, {}).get("L", [])


def key_text(key: dict[str, Any]) -> str:
    """An item's key (wire format) as one string: the same key always gives the same text."""
    return json.dumps(key, sort_keys=True)


def list_holders(
    client: Any,
    table: str,
    key: tuple[str, ...],
    attribute: str,
    list_key: str,
    user_ids: Collection[str],
) -> dict[str, list[str]]:
    """One Scan of the table (its key and the list `attribute` alone, all pages): for each item
    whose list holds an entry of one of `user_ids` in `list_key`, its key (`key_text`) -> those
    users, sorted. Nothing is kept of the other items."""
    wanted = set(user_ids)
    holders: dict[str, list[str]] = {}
    pages = client.get_paginator("scan").paginate(
        TableName=table, **projection(dict.fromkeys([*key, attribute]))
    )
    for page in pages:
        for item in page["Items"]:
            held = {entry_id(e, list_key) for e in item.get(attribute, {}).get("L", [])}
            if held & wanted:
                holders[key_text(key_of(item, key))] = sorted(held & wanted)
    return holders


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
    Returns how many entries were removed. See `prune_list`; `on_reread` sees the board's name
    and each board read again."""
    return prune_list(
        client,
        table,
        {"id": {"S": period}},
        "users",
        "id",
        user_ids,
        entries,
        on_reread=None if on_reread is None else (lambda read: on_reread(period, read)),
        label=f"scoreboard {period!r}",
    )


_ENTRY_KEY = "#entrykey"


def _placeholder(attribute: str) -> str:
    """An expression's placeholder for the list attribute, named after it where its name
    allows."""
    named = f"#{attribute}"
    return named if attribute.isalnum() and attribute.isascii() and named != _ENTRY_KEY else "#list"


def prune_list(
    client: Any,
    table: str,
    key: dict[str, Any],
    attribute: str,
    list_key: str,
    user_ids: Collection[str],
    entries: list[Any] | None = None,
    *,
    reread: Callable[[], list[Any] | None] | None = None,
    on_reread: Callable[[list[Any]], None] | None = None,
    exact: bool = False,
    label: str = "",
) -> int:
    """Remove every entry whose `list_key` is one of `user_ids` from the list `attribute` of the
    item of `key`; other entries keep order and fields. Returns how many entries were removed.

    `entries` is the list as just read (read here when not given; only the positions of the
    users' entries matter). Each update removes list positions on condition that they still
    hold those users (`exact`: still hold the entries as read, whole), so a position that
    shifted never removes someone else's entry. If the list changed meanwhile the condition
    fails: it is read again (`reread`, a consistent read by key unless given) and the removal
    retried, after a random pause so that batches pruning the same item in parallel stop
    colliding. `on_reread` sees each list read again before the retried removal.
    """
    read = reread or (lambda: list_at(client, table, key, attribute))
    label = label or f"{table} item {key_text(key)}"
    wanted, removed, conflicts = set(user_ids), 0, 0
    list_name = _placeholder(attribute)
    if entries is None:
        entries = read() or []
        if on_reread is not None:
            on_reread(entries)
    while True:
        positions = [i for i, entry in enumerate(entries) if entry_id(entry, list_key) in wanted]
        if not positions:
            return removed
        chunk = positions[-_MAX_REMOVALS_PER_UPDATE:]  # from the end: earlier indexes hold
        names = {list_name: attribute}
        if exact:
            values = {f":e{n}": entries[i] for n, i in enumerate(chunk)}
            condition = [f"{list_name}[{i}] = :e{n}" for n, i in enumerate(chunk)]
        else:
            names[_ENTRY_KEY] = list_key
            values = {f":u{n}": {"S": entry_id(entries[i], list_key)} for n, i in enumerate(chunk)}
            condition = [f"{list_name}[{i}].{_ENTRY_KEY} = :u{n}" for n, i in enumerate(chunk)]
        if attempt_conditional(
            client.update_item,
            TableName=table,
            Key=key,
            UpdateExpression="REMOVE " + ", ".join(f"{list_name}[{i}]" for i in chunk),
            ConditionExpression=" AND ".join(condition),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        ):
            removed += len(chunk)
            entries = [entry for i, entry in enumerate(entries) if i not in set(chunk)]
            continue
        conflicts += 1
        if conflicts > MAX_CONFLICTS:
            raise RuntimeError(f"{label} kept changing; entries not removed")
        time.sleep(random.uniform(0, min(0.05 * 2**conflicts, 1.0)))
        entries = read() or []
        if on_reread is not None:
            on_reread(entries)


def replace_list(
    client: Any,
    table: str,
    key: dict[str, Any],
    attribute: str,
    current: list[Any],
    entries: list[Any],
) -> bool:
    """Set the list `attribute` of the existing item of `key` to `entries` (wire format), only
    if it still holds `current`, as read (an empty `current`: no list, or an empty one); False
    when the item changed or went away meanwhile."""
    names = {"#list": attribute, "#key": next(iter(key))}
    held = "#list = :old" if current else "(attribute_not_exists(#list) OR #list = :old)"
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET #list = :new",
        ConditionExpression=f"attribute_exists(#key) AND {held}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":new": {"L": entries}, ":old": {"L": current}},
    )


# Keys per BatchWriteItem request, the AWS limit; resent while DynamoDB leaves some unprocessed.
BATCH_WRITE_LIMIT = 25
MAX_WRITE_ATTEMPTS = 10


def table_key(client: Any, table: str) -> tuple[str, ...]:
    """The names of the table's key attributes, partition key first."""
    schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
    return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH"))


def key_of(item: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    return {name: item[name] for name in key}


def items_of(
    client: Any, table: str, attribute: str, user_id: str, key: tuple[str, ...], index: str = ""
) -> list[dict[str, Any]]:
    """Every item of the user (all pages), whole: a Query of the table, consistent, or of its
    index, the hits then read back by the table's key in consistent batches (an index may
    project only the keys, and lags behind the table)."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#k = :user",
        "ExpressionAttributeNames": {"#k": attribute},
        "ExpressionAttributeValues": {":user": {"S": user_id}},
    }
    if index:
        query["IndexName"] = index
    else:
        query["ConsistentRead"] = True
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("query").paginate(**query):
        found.extend(page["Items"])
    if not index:
        return found
    whole = read_by_keys(client, table, [key_of(hit, key) for hit in found])
    return [item for item in whole if item.get(attribute) == {"S": user_id}]


def read_by_keys(
    client: Any, table: str, keys: list[dict[str, Any]], attributes: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The items of these keys that exist, by consistent BatchGetItem (100 keys per request,
    what is unprocessed sent again): whole, or only `attributes` when given."""
    items: list[dict[str, Any]] = []
    projected = projection(dict.fromkeys(attributes)) if attributes else {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": keys[start : start + BATCH_GET_LIMIT],
                "ConsistentRead": True,
                **projected,
            }
        }
        for attempt in range(MAX_WRITE_ATTEMPTS):
            response = client.batch_get_item(RequestItems=request)
            items.extend(response["Responses"].get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if request:
            raise RuntimeError(f"{table}: BatchGetItem left {len(request[table]['Keys'])} keys")
    return items


def delete_keys(client: Any, table: str, keys: list[dict[str, Any]]) -> None:
    """Delete the items of these keys, 25 per BatchWriteItem, resending what is unprocessed."""
    for start in range(0, len(keys), BATCH_WRITE_LIMIT):
        chunk = keys[start : start + BATCH_WRITE_LIMIT]
        request: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in chunk]}
        for attempt in range(MAX_WRITE_ATTEMPTS):
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if request:
            raise RuntimeError(f"{table}: BatchWriteItem left {len(request[table])} deletes")


def put_back_item(client: Any, table: str, item: dict[str, Any], key: tuple[str, ...]) -> bool:
    """Put a recorded item back only where nothing took its place; False when an item with its
    key exists."""
    return attempt_conditional(
        client.put_item,
        TableName=table,
        Item=item,
        ConditionExpression="attribute_not_exists(#k)",
        ExpressionAttributeNames={"#k": key[0]},
    )


def holds_item(client: Any, table: str, item: dict[str, Any], key: tuple[str, ...]) -> bool:
    """Whether the table holds exactly this item now (consistent read by its key)."""
    return read_by_keys(client, table, [key_of(item, key)]) == [item]


def keys_naming(
    client: Any, table: str, attribute: str, key: tuple[str, ...], users: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """One Scan of the table (all pages), reading only its key and `attribute`: user id -> the
    keys of the items whose `attribute` is that id, for the given users only (what the whole
    table holds is not kept)."""
    wanted = set(users)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    pages = client.get_paginator("scan").paginate(
        TableName=table, **projection(dict.fromkeys([*key, attribute]))
    )
    for page in pages:
        for item in page["Items"]:
            owner = item.get(attribute, {}).get("S")
            if owner in wanted:
                found[owner].append(key_of(item, key))
    return dict(found)


def unlink_item(
    client: Any, table: str, key: dict[str, Any], attribute: str, user_id: str, *, delete: bool
) -> bool:
    """Delete the item (`delete`), or remove its `attribute`, only while that attribute still
    names the user; False when it does not (the item changed hands or went meanwhile)."""
    condition: dict[str, Any] = {
        "ConditionExpression": "#a = :user",
        "ExpressionAttributeNames": {"#a": attribute},
        "ExpressionAttributeValues": {":user": {"S": user_id}},
    }
    if delete:
        return attempt_conditional(client.delete_item, TableName=table, Key=key, **condition)
    return attempt_conditional(
        client.update_item, TableName=table, Key=key, UpdateExpression="REMOVE #a", **condition
    )


def relink_item(
    client: Any, table: str, key: dict[str, Any], attribute: str, value: dict[str, Any]
) -> bool:
    """Set `attribute` back to `value` (wire format) only if the item still exists and holds
    no such attribute; False otherwise (it went, or was given another value meanwhile)."""
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET #a = :value",
        ConditionExpression="attribute_exists(#k) AND attribute_not_exists(#a)",
        ExpressionAttributeNames={"#a": attribute, "#k": next(iter(key))},
        ExpressionAttributeValues={":value": value},
    )


def items_where(
    client: Any, table: str, attribute: str, user_id: str, attributes: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Every item whose `attribute` is the string `user_id`: one filtered Scan of the table (all
    pages), the items whole, or only `attributes` when given."""
    names = {"#a": attribute}
    projected: dict[str, Any] = {}
    if attributes:
        projected = projection(dict.fromkeys(attributes))
        names.update(projected.pop("ExpressionAttributeNames"))
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#a = :user",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":user": {"S": user_id}},
        **projected,
    )
    return [item for page in pages for item in page["Items"]]
