"""Consistent re-read of users right before acting on them, and the same pure rules again."""

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cleanup_pipeline.aws.holds_table import read_holds
from cleanup_pipeline.aws.users_table import read_users
from cleanup_pipeline.core.decisions import EMAIL, Policy, active_holds, classify
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.core.wire import Item, decode_items

# Why a user left: their item is gone.
GONE = "user no longer exists"
# Why a user left an erasure: their request was closed meanwhile.
REQUEST_CLOSED = "the erase request is no longer open"


def recheck(
    client: Any,
    table: str,
    user_ids: list[str],
    decision: Decision,
    as_of: int,
    now: int,
    policy: Policy,
    holds_table: str | None = None,
    whole_items: bool = False,
    erasures: Mapping[str, str] | None = None,
) -> tuple[dict[str, Item], dict[str, str]]:
    """Return (items still classified `decision`, {user id: why it was dropped}). With a holds
    table, the batch's holds are re-read consistently too, right before deciding: a hold added
    since the scan protects the user. With `whole_items`, the items carry every attribute (for
    the deletion manifest). `erasures` ({user id: request id}) are the erase requests still
    open, as re-read by the caller."""
    items = read_users(client, table, user_ids, whole_items)
    dropped = {user_id: GONE for user_id in user_ids if user_id not in items}
    if not items:
        return {}, dropped
    holds = active_holds(read_holds(client, holds_table, list(items)), now) if holds_table else {}
    fresh = classify(decode_items(list(items.values())), as_of, now, policy, holds, erasures)
    keep: dict[str, Item] = {}
    for row in fresh.itertuples(index=False):
        if row.decision == decision:
            keep[row.id] = items[row.id]
        elif decision == Decision.ERASE and pd.isna(row.request):
            dropped[row.id] = REQUEST_CLOSED
        elif pd.notna(row.hold_reason):
            dropped[row.id] = f"now {row.decision} ({row.reason}: {row.hold_reason})"
        else:
            dropped[row.id] = f"now {row.decision} ({row.reason})"
    return keep, dropped


def email_of(item: Item) -> str:
    return item[EMAIL]["S"]


def ids_of(frame: pd.DataFrame) -> list[str]:
    return frame["id"].astype(str).tolist()
