"""Builders for DynamoDB wire-format items: wire values, users, features and scoreboards."""

import time
from typing import Any

from cleanup_pipeline.core.decisions import DAY_MS

DAY = DAY_MS
NOW = 1_750_000_000_000  # 2025-06-15T15:06:40Z, the pure tests' clock
AS_OF = NOW
Item = dict[str, Any]
NULL: dict[str, Any] = {"NULL": True}
ABSENT = object()  # as an attribute's value: leave the attribute out


def now_ms() -> int:
    """The wall clock, for runs whose `as_of` is now."""
    return int(time.time() * 1000)


def n(value: int | str) -> dict[str, str]:
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def user(user_id: Any = "u1", *, as_of: int = AS_OF, **attributes: Any) -> Item:
    """A valid user last seen 10 days before `as_of`, with the address `<id>@example.com`;
    keyword arguments set (or, with ABSENT, drop) attributes. `user_id` may also be a wire
    value, or ABSENT, when the id itself is under test (give `email` then)."""
    wire_id = s(user_id) if isinstance(user_id, str) else user_id
    item: Item = {"id": wire_id, "lastVisitAt": n(as_of - 10 * DAY)}
    if isinstance(user_id, str):
        item["email"] = s(f"{user_id}@example.com")
    item.update(attributes)
    return {name: value for name, value in item.items() if value is not ABSENT}


def inactive(user_id: str = "u1", days: int = 100, **attributes: Any) -> Item:
    """A user last seen `days` days before AS_OF (a notify candidate unless something else
    applies)."""
    return user(user_id, **{"lastVisitAt": n(AS_OF - days * DAY), **attributes})


def warned(sent: int, **extra: Any) -> dict[str, Any]:
    """Attributes of a user warned at `sent` after 61 days away."""
    return {"accountDeletionEmailSentAt": n(sent), "lastVisitAt": n(sent - 61 * DAY), **extra}


def user_item(
    user_id: str,
    *,
    last_visit: int,
    sent_at: int | None = None,
    email: str | None = None,
    **extra: Any,
) -> Item:
    """A user last seen at `last_visit`, warned at `sent_at` if given."""
    attributes: Item = {"lastVisitAt": n(last_visit)}
    if sent_at is not None:
        attributes["accountDeletionEmailSentAt"] = n(sent_at)
    if email is not None:
        attributes["email"] = s(email)
    return user(user_id, **{**attributes, **extra})


def delete_candidate(user_id: str, as_of: int, **extra: Any) -> Item:
    """Warned 40 days ago after 100 days away: past the 30-day grace period."""
    return user_item(user_id, last_visit=as_of - 100 * DAY, sent_at=as_of - 40 * DAY, **extra)


def notify_candidate(user_id: str, as_of: int, **extra: Any) -> Item:
    """Away for 61 days, never warned."""
    return user_item(user_id, last_visit=as_of - 61 * DAY, **extra)


def active_user(user_id: str, as_of: int, **extra: Any) -> Item:
    return user_item(user_id, last_visit=as_of - DAY, **extra)


def feature(feature_id: str, proposed_by: str | None = None, **extra: Any) -> Item:
    item: Item = {"id": s(feature_id), **extra}
    if proposed_by is not None:
        item["proposedBy"] = s(proposed_by)
    return item


def board_entry(user_id: str, total: int) -> dict[str, Any]:
    """A scoreboard entry as the app stores it: the user's id plus other fields."""
    return {
        "M": {
            "id": s(user_id),
            "name": s(f"Name of {user_id}"),
            "total": n(total),
            "stats": {"M": {"days": n(total % 7), "tags": {"L": [s("a"), s("b")]}}},
        }
    }


def scoreboard(period: str, entries: list[dict[str, Any]]) -> Item:
    return {"id": s(period), "users": {"L": entries}, "updatedAt": n(1_700_000_000_000)}
