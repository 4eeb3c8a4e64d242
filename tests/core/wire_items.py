"""Builders for DynamoDB wire-format user items, decoded and classified by the real code."""

from typing import Any

import pandas as pd

from cleanup_pipeline.core.decisions import classify
from cleanup_pipeline.core.policy import DAY_MS, Policy
from cleanup_pipeline.core.wire_decode import decode_items

DAY = DAY_MS
NOW = 1_750_000_000_000  # 2025-06-15T15:06:40Z
AS_OF = NOW
NULL: dict[str, Any] = {"NULL": True}
ABSENT = object()


def n(value: int | str) -> dict[str, str]:
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def user(user_id: str = "u1", **attributes: Any) -> dict[str, Any]:
    """A valid, recently active user; keyword arguments set (or, with ABSENT, drop) attributes."""
    item: dict[str, Any] = {
        "id": s(user_id),
        "email": s(f"{user_id}@example.com"),
        "lastVisitAt": n(AS_OF - 10 * DAY),
    }
    for name, value in attributes.items():
        if value is ABSENT:
            item.pop(name, None)
        else:
            item[name] = value
    return item


def inactive(user_id: str = "u1", days: int = 100, **attributes: Any) -> dict[str, Any]:
    """A user last seen `days` days before AS_OF (a notify candidate unless something else
    applies)."""
    return user(user_id, **{"lastVisitAt": n(AS_OF - days * DAY), **attributes})


def decide_all(
    items: list[dict[str, Any]],
    as_of: int = AS_OF,
    now: int = NOW,
    policy: Policy | None = None,
) -> pd.DataFrame:
    return classify(decode_items(items), as_of, now, policy or Policy())


def decide(item: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
    """(decision, reason) of a single item."""
    row = decide_all([item], **kwargs).iloc[0]
    return str(row["decision"]), str(row["reason"])
