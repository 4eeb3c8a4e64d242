"""Reads and conditional writes on the users table."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from cleanup_pipeline.aws.dynamodb import (
    attempt_conditional,
    projection,
    read_by_id,
    unchanged_since,
)
from cleanup_pipeline.core.decisions import (
    CLAIMED_AT,
    CLAIMED_BY,
    ID,
    PROJECTED_ATTRIBUTES,
)
from cleanup_pipeline.core.decisions import EMAIL_SENT_AT as SENT_AT
from cleanup_pipeline.core.wire import Item, concat_snapshots, decode_items


def scan_snapshot(
    client: Any, table: str, segments: int = 4, on_page: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """Parallel Scan of the users table, projected to the decision attributes, decoded page by
    page so that raw items never pile up in memory. `on_page` gets each page's item count."""

    def decoded(page: dict[str, Any]) -> pd.DataFrame:
        if on_page is not None:
            on_page(len(page["Items"]))
        return decode_items(page["Items"])

    def scan_segment(segment: int) -> list[pd.DataFrame]:
        pages = client.get_paginator("scan").paginate(
            TableName=table,
            Segment=segment,
            TotalSegments=segments,
            **projection(PROJECTED_ATTRIBUTES),
        )
        return [decoded(page) for page in pages if page["Items"]]

    with ThreadPoolExecutor(max_workers=segments) as pool:
        frames = [frame for part in pool.map(scan_segment, range(segments)) for frame in part]
    if not frames:
        return decode_items([])
    return concat_snapshots(frames)


def read_users(
    client: Any, table: str, user_ids: list[str], whole_items: bool = False
) -> dict[str, Item]:
    """Consistent BatchGetItem of the decision attributes and email (every attribute with
    `whole_items`: the same calls, for a deletion manifest); missing users are absent."""
    return read_by_id(client, table, user_ids, None if whole_items else PROJECTED_ATTRIBUTES)


def claim_warning(
    client: Any, table: str, item: Item, run_id: str, now: int, stale_before: int
) -> bool:
    """Mark the user as being warned by this run; False when the item changed or another run
    holds a live claim."""
    condition = unchanged_since(item)
    by, at = condition.name(CLAIMED_BY), condition.name(CLAIMED_AT)
    stale = condition.value({"N": str(stale_before)})
    condition.add(f"(attribute_not_exists({at}) OR {at} < {stale})")
    run, claimed = condition.value({"S": run_id}), condition.value({"N": str(now)})
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key={ID: item[ID]},
        UpdateExpression=f"SET {by} = {run}, {at} = {claimed}",
        **condition.as_kwargs(),
    )


def _while_claimed(
    client: Any,
    table: str,
    user_id: str,
    run_id: str,
    update: str,
    extra: tuple[dict[str, str], dict[str, Any]] = ({}, {}),
) -> bool:
    """Apply `update` only while this run holds the user's warning claim; `extra` adds the
    update's own (names, values)."""
    names, values = extra
    return attempt_conditional(
        client.update_item,
        TableName=table,
        Key={ID: {"S": user_id}},
        UpdateExpression=update,
        ConditionExpression="#by = :run",
        ExpressionAttributeNames={"#by": CLAIMED_BY, "#at": CLAIMED_AT, **names},
        ExpressionAttributeValues={":run": {"S": run_id}, **values},
    )


def confirm_warning(client: Any, table: str, user_id: str, run_id: str, accepted_at: int) -> bool:
    """Record the time SES accepted the warning and drop this run's claim."""
    return _while_claimed(
        client,
        table,
        user_id,
        run_id,
        "SET #sent = :sent REMOVE #by, #at",
        ({"#sent": SENT_AT}, {":sent": {"N": str(accepted_at)}}),
    )


def release_warning(client: Any, table: str, user_id: str, run_id: str) -> bool:
    """Drop this run's claim after SES refused the message, so the next run tries again."""
    return _while_claimed(client, table, user_id, run_id, "REMOVE #by, #at")


def put_back_user(client: Any, table: str, item: Item) -> bool:
    """Put a restored user item back, only if no item has that id; False when an account with
    that id was created meanwhile (it is kept as is)."""
    return attempt_conditional(
        client.put_item,
        TableName=table,
        Item=item,
        ConditionExpression="attribute_not_exists(#id)",
        ExpressionAttributeNames={"#id": ID},
    )


def delete_user(client: Any, table: str, item: Item) -> bool:
    """Delete the user item only if it is still exactly as re-read (still a delete candidate)."""
    return attempt_conditional(
        client.delete_item,
        TableName=table,
        Key={ID: item[ID]},
        **unchanged_since(item).as_kwargs(),
    )
