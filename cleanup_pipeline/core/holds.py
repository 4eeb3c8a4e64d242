"""Persistent holds (SPEC §10): users an operator protects across runs, until a time or forever.

Pure: which stored holds are active at a given wall-clock time, and what a valid new hold is.
The holds table itself is read and written in `aws/holds_table.py`.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from cleanup_pipeline.core.as_of import RANGE, format_ms, parse_as_of
from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.core.user_attributes import check_user_id

# The reason shown for users held by the per-run `exempt_user_ids` config rather than the table.
EXEMPT_USER_IDS = "exempt_user_ids"
# A stored hold without a readable reason still holds; the report says so.
NO_REASON = "(no reason recorded)"
HOLDS_OFF = (
    "HOLDS_TABLE_NAME is not set: persistent holds are off. Set it to the holds table's name "
    "(key id, string) to add, remove or list holds."
)


class HoldError(ValueError):
    """A hold that cannot be added or removed as asked; the message says why."""


@dataclass(frozen=True)
class Hold:
    user_id: str
    reason: str
    until: int | None = None  # epoch ms; None holds until the hold is removed
    # A stored `until` that is not a time a hold can end at (text, a fraction, a number past
    # year 9999), as written in the table: the hold holds until removed, and is listed with
    # this value and a flag saying so. Not part of what the hold is.
    unreadable_until: str | None = field(default=None, compare=False)

    def active_at(self, now: int) -> bool:
        """Active until the wall clock passes `until`."""
        return self.until is None or now <= self.until

    def as_json(self, now: int) -> dict[str, object]:
        shown: dict[str, object] = {
            "user_id": self.user_id,
            "reason": self.reason,
            "until": None if self.until is None else format_ms(self.until),
            "active": self.active_at(now),
        }
        if self.unreadable_until is not None:
            shown["until"] = self.unreadable_until
            shown["flag"] = f"until is not a time {RANGE}: held until removed"
        return shown


def active_holds(holds: Iterable[Hold], now: int) -> dict[str, str]:
    """{user id: reason} of the holds still active at `now`; expired holds are ignored."""
    return {hold.user_id: hold.reason for hold in holds if hold.active_at(now)}


def new_hold(user_id: str, reason: str, until: str | None, now: int) -> Hold:
    """A hold to store, or `HoldError` naming what is wrong. Addresses in the reason are masked,
    since the reason is shown in reports and the UI."""
    try:
        user_id = check_user_id(user_id.strip(), "user id (USER_ID / user_id)")
    except ValueError as error:
        raise HoldError(str(error)) from None
    reason = scrub_emails(reason.strip())
    if not reason:
        raise HoldError("a hold needs a reason (--reason / reason): say why the user is held")
    until_ms = None
    if until is not None and until.strip():
        try:
            until_ms = parse_as_of(until, "until (--until / until)")
        except ValueError as error:
            raise HoldError(str(error)) from None
        if until_ms <= now:
            raise HoldError(f"until {format_ms(until_ms)} is already past: the hold would not hold")
    return Hold(user_id, reason, until_ms)
