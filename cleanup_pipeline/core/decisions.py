"""What each user is, decided without I/O: the retention policy, the users table's attribute
names, the snapshot's columns, the reason texts, the holds, the inactivity buckets, and the
decision rules as one vectorised function over a snapshot.

Pure: no I/O, no clock. `as_of` (the run's reference time) and `now` (the wall clock, used only
to reject timestamps from the future) are always passed in. The snapshot never holds email
addresses: only whether one is present and its masked form. Reports count users by the reason
texts, so each is written here once. Holds are users an operator protects across runs, until a
time or forever; the holds table itself is read and written in `aws/holds_table.py`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cleanup_pipeline.core.as_of import RANGE, format_ms, parse_as_of
from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.core.vocabulary import Decision

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Policy:
    notify_after_days: int = 60
    delete_after_days: int = 90
    exempt_user_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.notify_after_days <= 0:
            raise ValueError("notify_after_days must be positive")
        if self.delete_after_days <= self.notify_after_days:
            raise ValueError(
                f"delete_after_days ({self.delete_after_days}) must exceed "
                f"notify_after_days ({self.notify_after_days})"
            )

    @property
    def notify_after_ms(self) -> int:
        return self.notify_after_days * DAY_MS

    @property
    def grace_days(self) -> int:
        """Days between the warning and the deletion."""
        return self.delete_after_days - self.notify_after_days

    @property
    def grace_ms(self) -> int:
        return self.grace_days * DAY_MS


ID = "id"
EMAIL = "email"
LAST_VISIT_AT = "lastVisitAt"
EMAIL_SENT_AT = "accountDeletionEmailSentAt"
FREE_TRIAL_END = "freeTrialEnd"
LIFETIME_DEAL = "lifeTimeDeal"
SUBSCRIPTION = "subscription"
# A member of the `subscription` map.
ENDS_AT = "endsAt"
# Our own bookkeeping on a user item while a warning is in flight (see actions/notify.py).
CLAIMED_BY = "accountDeletionEmailClaimedBy"
CLAIMED_AT = "accountDeletionEmailClaimedAt"

# The subscription's end as a reason label and as a snapshot column.
SUBSCRIPTION_ENDS_AT = f"{SUBSCRIPTION}.{ENDS_AT}"
SUBSCRIPTION_ENDS_AT_COLUMN = f"{SUBSCRIPTION}_{ENDS_AT}"

# Numbers read from the top level of an item (the subscription's end is read from its map).
NUMBER_ATTRIBUTES: tuple[str, ...] = (LAST_VISIT_AT, EMAIL_SENT_AT, FREE_TRIAL_END)
# Every attribute a decision reads, as projected on scans and re-reads.
PROJECTED_ATTRIBUTES: tuple[str, ...] = (ID, EMAIL, *NUMBER_ATTRIBUTES, LIFETIME_DEAL, SUBSCRIPTION)

# DynamoDB's limit on a partition key value, in bytes of UTF-8.
MAX_ID_BYTES = 2048


def check_user_id(user_id: str, name: str) -> str:
    """`user_id` as given, or a one-line `ValueError` naming the argument `name`: a user id is
    never empty or blank, never contains '/', and is a DynamoDB key (at most 2,048 bytes)."""
    try:
        size = len(user_id.encode("utf-8"))
    except UnicodeEncodeError:  # bytes of no encoding, passed through by the shell
        size = -1
    if not user_id.strip():
        why = "is empty"
    elif "/" in user_id:
        why = "contains '/'"
    elif size < 0:
        why = "is not valid UTF-8"
    elif size > MAX_ID_BYTES:
        why = f"is longer than {MAX_ID_BYTES:,} bytes (UTF-8)"
    else:
        return user_id
    shown = user_id if len(user_id) <= 40 else f"{user_id[:40]}..."
    raise ValueError(f"{name} {shown!r} {why}: not a user id")


def about(attribute: str, problem: str) -> str:
    """A reason about one attribute's value: `lastVisitAt: not a number`."""
    return f"{attribute}: {problem}"


# What the decoder finds wrong with a value of the wrong type or size.
NOT_A_STRING, NOT_A_NUMBER, OUT_OF_RANGE = "not a string", "not a number", "number out of range"

ID_MISSING = about(ID, "missing or empty")
ID_HAS_SLASH = about(ID, "contains '/'")
ID_DUPLICATED = about(ID, "duplicated in snapshot")
EMAIL_MISSING = about(EMAIL, "missing or empty")
LAST_VISIT_MISSING = about(LAST_VISIT_AT, "missing")
LAST_VISIT_IN_SECONDS = about(LAST_VISIT_AT, "too small, looks like seconds")
LAST_VISIT_IN_FUTURE = about(LAST_VISIT_AT, "more than a day in the future")
SUBSCRIPTION_NOT_A_MAP = about(SUBSCRIPTION, "not a map")
# Stands for the decoder's own reason, which malformed rows carry instead.
MALFORMED = "malformed"
HOLD, TRIAL, LIFETIME, SUBSCRIBER = "hold", "trial", "lifetime", "subscriber"
ACTIVE_REASON = "active"
# Reasons that carry a policy number: `.format(days=...)`.
WARNED_OVER = "warned over {days} days ago"
WITHIN_GRACE = "warned, within the {days}-day grace period"
INACTIVE_OVER = "inactive over {days} days"
# An open erase request decides, by its id: `.format(id=...)`.
ERASURE_REQUEST = "erasure request {id}"
# Why an erase request of a paying customer stays open: the app ends the billing first.
ACTIVE_SUBSCRIPTION = "active subscription"


# Earliest plausible millisecond timestamp (2000-01-01); smaller values look like seconds.
MIN_PLAUSIBLE_MS = 946_684_800_000

SNAPSHOT_DTYPES: dict[str, str] = {
    ID: "string[pyarrow]",
    "has_email": "boolean",
    "email_masked": "string[pyarrow]",
    **dict.fromkeys(NUMBER_ATTRIBUTES, "Int64"),
    LIFETIME_DEAL: "boolean",
    "has_subscription": "boolean",
    SUBSCRIPTION_ENDS_AT_COLUMN: "Int64",
    # Why a raw value could not be decoded ("lastVisitAt: not a number"), else NA.
    "malformed": "category",
}

REQUIRED_COLUMNS: tuple[str, ...] = tuple(SNAPSHOT_DTYPES)


def empty_snapshot() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SNAPSHOT_DTYPES.items()})


# Lower edges in whole days; each bucket runs up to the next edge. 60 and 90 are the default
# warning and deletion thresholds, so the buckets around them show who is next.
EDGES = (30, 60, 75, 90, 120, 180, 365)
_INVALID = str(Decision.INVALID)
LABELS = ("<30", "30-59", "60-74", "75-89", "90-119", "120-179", "180-364", "≥365", _INVALID)
# Metadata keys: plain characters, stable across runs.
KEYS = ("lt_30", "30_59", "60_74", "75_89", "90_119", "120_179", "180_364", "365_plus", _INVALID)


def days_inactive_histogram(
    last_visit: pd.Series, as_of: int, invalid: pd.Series | np.ndarray
) -> dict[str, int]:
    """Users per bucket of whole days since `lastVisitAt`, every bucket present. Users marked
    `invalid` (or without `lastVisitAt`) count under "invalid"; a visit after `as_of` under
    "<30"."""
    visits = last_visit.to_numpy(dtype="int64", na_value=0)
    unusable = last_visit.isna().to_numpy() | np.asarray(invalid, dtype=bool)
    days = (as_of - visits) // DAY_MS
    bucket = np.searchsorted(np.asarray(EDGES), days, side="right")
    bucket[unusable] = len(EDGES) + 1
    counts = np.bincount(bucket, minlength=len(LABELS))
    return {label: int(n) for label, n in zip(LABELS, counts, strict=True)}


def histogram_keys(histogram: dict[str, int]) -> dict[str, int]:
    """The same counts under `days_inactive/<key>` metadata names."""
    return {
        f"days_inactive/{key}": histogram[label] for label, key in zip(LABELS, KEYS, strict=True)
    }


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


INVALID, EXEMPT, ACTIVE, WAITING, NOTIFY, DELETE, ERASE = Decision
DECISIONS: tuple[Decision, ...] = tuple(Decision)
# The key of the total in `count_decisions`, beside one key per decision.
USERS = "users"
COUNT_KEYS: tuple[str, ...] = (USERS, *DECISIONS)
DECISION_DTYPE = pd.CategoricalDtype([str(d) for d in DECISIONS])

# The decisions frame's column of each user's open erase request (NA: none).
REQUEST = "request"

# Columns carried into the decisions frame alongside decision and reason.
TIMESTAMP_COLUMNS: tuple[str, ...] = (*NUMBER_ATTRIBUTES, SUBSCRIPTION_ENDS_AT_COLUMN)


def _ints(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values with NA as 0, mask of present values) as plain numpy arrays."""
    present = series.notna().to_numpy()
    return series.to_numpy(dtype="int64", na_value=0), present


def _flags(series: pd.Series) -> np.ndarray:
    return series.fillna(False).to_numpy(dtype=bool)


def _duplicated(ids: pd.Series) -> np.ndarray:
    """Rows whose id occurs more than once (every occurrence, not only the later ones)."""
    codes, _ = pd.factorize(ids, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=1)
    return (codes >= 0) & (counts[np.maximum(codes, 0)] > 1)


def _hold_reasons(ids: pd.Series, policy: Policy, holds: Mapping[str, str]) -> pd.Series:
    """Why each user is on hold (the hold's own reason, or `exempt_user_ids`), else NA."""
    why = {**dict.fromkeys(policy.exempt_user_ids, EXEMPT_USER_IDS), **holds}
    if not why:
        return pd.Series(pd.NA, index=ids.index, dtype="string[pyarrow]")
    return ids.map(why).astype("string[pyarrow]")


def classify(
    snapshot: pd.DataFrame,
    as_of: int,
    now: int,
    policy: Policy,
    holds: Mapping[str, str] | None = None,
    erasures: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Return one row per snapshot row: id, email_masked, decision, reason, the timestamps used,
    whole days inactive, why a held user is held, and the user's open erase request. The first
    rule that applies decides (the rules' order). `holds` ({user id: reason}) are the active
    persistent holds, on top of the policy's `exempt_user_ids`. `erasures` ({user id: request
    id}) are the open erase requests: such a user is `erase`, whatever the inactivity rules say,
    unless invalid or held (a legal hold wins), or a lifetime customer or subscriber (their
    request stays open: the app ends the billing first)."""
    ids = snapshot[ID].astype("string[pyarrow]")
    hold_reason = _hold_reasons(ids, policy, holds or {})
    request = (
        ids.map(dict(erasures)).astype("string[pyarrow]")
        if erasures
        else pd.Series(pd.NA, index=ids.index, dtype="string[pyarrow]")
    )
    requested = request.notna().to_numpy()
    lifetime = _flags(snapshot[LIFETIME_DEAL])
    malformed = snapshot["malformed"].astype("category")
    last_visit, has_last_visit = _ints(snapshot[LAST_VISIT_AT])
    sent_at, has_sent_at = _ints(snapshot[EMAIL_SENT_AT])
    trial_end, has_trial_end = _ints(snapshot[FREE_TRIAL_END])
    ends_at, has_ends_at = _ints(snapshot[SUBSCRIPTION_ENDS_AT_COLUMN])
    warned = has_sent_at & (last_visit < sent_at)
    subscriber = _flags(snapshot["has_subscription"]) & (~has_ends_at | (ends_at > as_of))
    grace = policy.grace_days

    # (condition, decision, reason); the first true condition decides.
    rules: list[tuple[np.ndarray, Decision, str]] = [
        (malformed.notna().to_numpy(), INVALID, MALFORMED),
        (_flags(ids.isna() | (ids == "")), INVALID, ID_MISSING),
        (_flags(ids.str.contains("/", regex=False)), INVALID, ID_HAS_SLASH),
        (_duplicated(ids), INVALID, ID_DUPLICATED),
        (~_flags(snapshot["has_email"]), INVALID, EMAIL_MISSING),
        (~has_last_visit, INVALID, LAST_VISIT_MISSING),
        (last_visit < MIN_PLAUSIBLE_MS, INVALID, LAST_VISIT_IN_SECONDS),
        (last_visit > now + DAY_MS, INVALID, LAST_VISIT_IN_FUTURE),
        (hold_reason.notna().to_numpy(), EXEMPT, HOLD),
        (requested & ~lifetime & ~subscriber, ERASE, ERASURE_REQUEST),
        (has_trial_end & (trial_end > as_of), EXEMPT, TRIAL),
        (lifetime, EXEMPT, LIFETIME),
        (subscriber, EXEMPT, SUBSCRIBER),
        (
            warned & (sent_at + policy.grace_ms < as_of),
            DELETE,
            WARNED_OVER.format(days=grace),
        ),
        (warned, WAITING, WITHIN_GRACE.format(days=grace)),
        (
            as_of - last_visit > policy.notify_after_ms,
            NOTIFY,
            INACTIVE_OVER.format(days=policy.notify_after_days),
        ),
    ]
    held_rule = next(i for i, (_, _, text) in enumerate(rules) if text == HOLD)
    erase_rule = next(i for i, (_, _, text) in enumerate(rules) if text == ERASURE_REQUEST)
    rule = np.select([cond for cond, _, _ in rules], np.arange(len(rules)), default=len(rules))
    decision_of_rule = np.array(
        [DECISIONS.index(d) for _, d, _ in rules] + [DECISIONS.index(ACTIVE)], dtype="int8"
    )
    decision = pd.Categorical.from_codes(decision_of_rule[rule], dtype=DECISION_DTYPE)

    # Malformed rows take their reason from the decoder, erase rows from their request; every
    # other row from its rule.
    texts = [text for _, _, text in rules] + [ACTIVE_REASON]
    asked = pd.Categorical(request.where(rule == erase_rule))
    reason_codes = np.where(rule == 0, len(texts) + malformed.cat.codes.to_numpy(), rule)
    reason_codes = np.where(
        rule == erase_rule,
        len(texts) + len(malformed.cat.categories) + asked.codes,
        reason_codes,
    ).astype("int32")
    reason = pd.Categorical.from_codes(
        reason_codes,
        categories=texts
        + list(malformed.cat.categories)
        + [ERASURE_REQUEST.format(id=request_id) for request_id in asked.categories],
    )

    days_inactive = pd.array((as_of - last_visit) // DAY_MS, dtype="Int64")
    days_inactive[~has_last_visit] = pd.NA
    columns = {
        ID: ids.array,
        "email_masked": snapshot["email_masked"].astype("string[pyarrow]").array,
        "decision": decision,
        "reason": reason,
        **{column: snapshot[column].astype("Int64").array for column in TIMESTAMP_COLUMNS},
        "days_inactive": days_inactive,
        # Only a user whose decision is the hold is reported as held.
        "hold_reason": hold_reason.where(rule == held_rule).array,
        # Every open erase request, decided or not: the report says why one stays open.
        REQUEST: request.array,
    }
    return pd.DataFrame(columns)


def count_decisions(decisions: pd.DataFrame) -> dict[str, int]:
    """Number of users per decision, every decision present (zero when none)."""
    counts = decisions["decision"].value_counts().reindex(list(DECISIONS), fill_value=0)
    return {USERS: len(decisions), **{str(label): int(n) for label, n in counts.items()}}
