"""Decoding DynamoDB items, as the low-level client returns them, into the snapshot.

boto3's `TypeDeserializer` walks every attribute in Python and is far too slow for millions of
users. What costs here is touching a million small dicts scattered in memory, not the work done
on each. So one pass reads the three attributes every user has in their usual shape
(`{"S": ...}`, `{"N": ...}`) and notes which items have more; pyarrow and numpy convert the
columns. The few items of any other shape (an id or email missing, NULL, of the wrong type) and
the optional attributes are read by the reference decoder (`decode_exact`), which reads every
attribute of every item on its own, whatever its shape, and gives the same values and reasons;
so is a whole chunk if the fast path raises. A value of the wrong type is never fatal: the row is
kept and flagged in `malformed`.
"""

import base64
import operator
from decimal import Decimal
from itertools import compress, repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleanup_pipeline.core.decisions import (
    EMAIL,
    EMAIL_SENT_AT,
    ENDS_AT,
    FREE_TRIAL_END,
    ID,
    LAST_VISIT_AT,
    LIFETIME_DEAL,
    NOT_A_NUMBER,
    NOT_A_STRING,
    NUMBER_ATTRIBUTES,
    OUT_OF_RANGE,
    PROJECTED_ATTRIBUTES,
    SNAPSHOT_DTYPES,
    SUBSCRIPTION,
    SUBSCRIPTION_ENDS_AT,
    SUBSCRIPTION_ENDS_AT_COLUMN,
    SUBSCRIPTION_NOT_A_MAP,
    about,
    empty_snapshot,
)
from cleanup_pipeline.core.masking import mask_emails

Item = dict[str, dict[str, Any]]
Values = list[dict[str, Any] | None]

# Largest integer float64 holds exactly; anything above is not a plausible timestamp.
_MAX_EXACT = 2**53

NUMBER_ATTRIBUTES = NUMBER_ATTRIBUTES
# How each number is read: a huge lastVisitAt is in the future, hence an error, but
# elsewhere only a non-number is; ends compared as `end > as_of` round up (see parse_numbers).
NUMBER_RULES: dict[str, dict[str, bool]] = {
    LAST_VISIT_AT: {"huge_is_error": True, "up": False},
    EMAIL_SENT_AT: {"huge_is_error": False, "up": False},
    FREE_TRIAL_END: {"huge_is_error": False, "up": True},
}


def pulled(values: Values, key: str) -> pa.Array:
    """The `key` member of every value that is there, else null, as a string array."""
    return pa.array([v.get(key) if v else None for v in values], type=pa.string())


def wrong_type(values: Values, expected: str, raw: pa.Array) -> np.ndarray:
    """Positions holding a value that is neither `expected` nor NULL (NULL counts as absent).

    Only values without an `expected` member (null in `raw`, their `pulled` members) can be;
    those are few, so they alone are looked at again.
    """
    unread = np.flatnonzero(raw.is_null().to_numpy(zero_copy_only=False))
    return np.array(
        [i for i in unread if (v := values[i]) and expected not in v and "NULL" not in v],
        dtype=np.int64,
    )


def parse_numbers(
    raw: pa.Array, label: str, huge_is_error: bool = True, up: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """Parse N strings (null: absent): (Int64 series, per-row error text or None).

    A fraction is rounded down, or up with `up` (for ends compared as `end > as_of`, so that
    rounding never ends an exemption early). Beyond ±2**53 a value is an error, or with
    `huge_is_error=False` clamped to ±2**53, which keeps its order against any real time.
    """
    try:
        parsed = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # a form pyarrow does not parse; pandas is slower but lenient
        parsed = pd.to_numeric(pd.Series(raw.to_pylist(), dtype=object), errors="coerce")
        parsed = parsed.to_numpy(dtype="float64", na_value=np.nan)
    is_number = raw.is_valid().to_numpy(zero_copy_only=False)
    finite = np.isfinite(parsed)
    if huge_is_error:
        finite &= np.abs(np.nan_to_num(parsed)) < _MAX_EXACT
    ok = is_number & finite
    kept = np.clip(np.where(ok, parsed, 0), -_MAX_EXACT, _MAX_EXACT)
    result = pd.arrays.IntegerArray((np.ceil if up else np.floor)(kept).astype("int64"), ~ok)
    errors = np.full(len(raw), None, dtype=object)
    errors[is_number & ~finite] = about(label, OUT_OF_RANGE)
    return pd.Series(result), errors


def numbers(
    values: Values, label: str, huge_is_error: bool = True, up: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """Decode an optional N attribute: (Int64 series, per-row error text or None)."""
    raw = pulled(values, "N")
    result, errors = parse_numbers(raw, label, huge_is_error, up)
    errors[wrong_type(values, "N", raw)] = about(label, NOT_A_NUMBER)
    return result, errors


def strings(values: Values, label: str) -> tuple[pd.Series, np.ndarray]:
    raw = pulled(values, "S")
    errors = np.full(len(values), None, dtype=object)
    errors[wrong_type(values, "S", raw)] = about(label, NOT_A_STRING)
    return pd.Series(pd.arrays.ArrowStringArray(raw)), errors


def js_truthy(value: dict[str, Any] | None) -> bool:
    """JavaScript truthiness of a DynamoDB value, as the app reads `lifeTimeDeal`."""
    if not value or "NULL" in value:
        return False
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "N" in value:
        try:
            return float(value["N"]) != 0
        except ValueError:
            return True
    if "S" in value:
        return value["S"] != ""
    return True


def subscription(values: Values) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """(is a map, endsAt rounded up, per-row error text or None)."""
    maps = [v.get("M") if v else None for v in values]
    ends_at, errors = numbers(
        [m.get(ENDS_AT) if m is not None else None for m in maps],
        SUBSCRIPTION_ENDS_AT,
        huge_is_error=False,
        up=True,
    )
    is_map = np.fromiter(map(operator.is_not, maps, repeat(None)), dtype=bool, count=len(maps))
    not_maps = np.flatnonzero(~is_map)
    wrong = [i for i in not_maps if (v := values[i]) and "M" not in v and "NULL" not in v]
    errors[wrong] = SUBSCRIPTION_NOT_A_MAP
    return (
        pd.Series(pd.arrays.BooleanArray(is_map, np.zeros(len(maps), dtype=bool))),
        ends_at,
        errors,
    )


def first_error(*columns: np.ndarray) -> pd.Series:
    """Per row, the first error found in column order, else NA (categories sorted)."""
    merged = columns[-1].copy()
    for errors in reversed(columns[:-1]):
        found = pd.notna(errors)
        merged[found] = errors[found]
    found = np.flatnonzero(pd.notna(merged))
    categories, codes = np.unique(merged[found].astype(str), return_inverse=True)
    all_codes = np.full(len(merged), -1, dtype=np.int32)
    all_codes[found] = codes
    return pd.Series(pd.Categorical.from_codes(all_codes, categories=categories))


def email_columns(emails: pa.Array) -> dict[str, Any]:
    """Whether an address is there and its masked form: the address itself is never kept."""
    present = pc.fill_null(pc.not_equal(emails, ""), False)
    masked = mask_emails(pd.Series(pd.arrays.ArrowStringArray(pc.if_else(present, emails, None))))
    has_email = present.to_numpy(zero_copy_only=False)
    return {
        "has_email": pd.arrays.BooleanArray(has_email, np.zeros(len(has_email), dtype=bool)),
        "email_masked": masked.array,
    }


def decode_exact(items: list[Item]) -> pd.DataFrame:
    """Decode scanned user items into a snapshot frame with `SNAPSHOT_DTYPES`."""
    if not items:
        return empty_snapshot()
    ids, id_errors = strings([item.get(ID) for item in items], ID)
    email_values = [item.get(EMAIL) for item in items]
    emails = pulled(email_values, "S")
    email_errors = np.full(len(items), None, dtype=object)
    email_errors[wrong_type(email_values, "S", emails)] = about(EMAIL, NOT_A_STRING)
    decoded: dict[str, Any] = {ID: ids}
    errors = [id_errors, email_errors]
    for name in NUMBER_ATTRIBUTES:
        decoded[name], number_errors = numbers(
            [item.get(name) for item in items], name, **NUMBER_RULES[name]
        )
        errors.append(number_errors)
    has_subscription, ends_at, subscription_errors = subscription(
        [item.get(SUBSCRIPTION) for item in items]
    )
    errors.append(subscription_errors)
    frame = pd.DataFrame(
        {
            ID: ids,
            **email_columns(emails),
            **{name: decoded[name] for name in NUMBER_ATTRIBUTES},
            LIFETIME_DEAL: pd.Series(
                [js_truthy(item.get(LIFETIME_DEAL)) for item in items], dtype="boolean"
            ),
            "has_subscription": has_subscription,
            SUBSCRIPTION_ENDS_AT_COLUMN: ends_at,
            "malformed": first_error(*errors),
        }
    )
    return frame.astype(SNAPSHOT_DTYPES)


__all__ = ["PROJECTED_ATTRIBUTES", "Item", "concat_snapshots", "decode_items"]

PROJECTED_ATTRIBUTES = PROJECTED_ATTRIBUTES
_OPTIONAL = (EMAIL_SENT_AT, FREE_TRIAL_END, LIFETIME_DEAL, SUBSCRIPTION)
# (attribute, member) every user has; an item holding just these has nothing optional.
_REQUIRED = ((ID, "S"), (EMAIL, "S"), (LAST_VISIT_AT, "N"))
# A chunk the fast path cannot take falls back as a whole to the reference decoder.
CHUNK_ITEMS = 262_144
# What the fast path raises on a value it cannot take (pyarrow's errors subclass these).
ID, EMAIL, LAST_VISIT_AT = (name for name, _ in _REQUIRED)
_FALLBACK_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, pa.ArrowException)


def decode_items(items: list[Item]) -> pd.DataFrame:
    """Decode scanned user items into a snapshot frame with `SNAPSHOT_DTYPES`, in item order."""
    if not items:
        return empty_snapshot()
    frames = [_decode_chunk(items[i : i + CHUNK_ITEMS]) for i in range(0, len(items), CHUNK_ITEMS)]
    return frames[0] if len(frames) == 1 else concat_snapshots(frames)


def concat_snapshots(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One snapshot of several, in order (their `malformed` categories merged, sorted)."""
    reasons = [frame["malformed"].astype("category") for frame in frames]
    categories = np.array(sorted({c for r in reasons for c in r.cat.categories}), dtype=str)
    codes = [r.cat.set_categories(categories).cat.codes.to_numpy() for r in reasons]
    snapshot = pd.concat([frame.drop(columns="malformed") for frame in frames], ignore_index=True)
    snapshot["malformed"] = pd.Categorical.from_codes(np.concatenate(codes), categories=categories)
    return snapshot.astype(SNAPSHOT_DTYPES)


def _decode_chunk(items: list[Item]) -> pd.DataFrame:
    try:
        return _decode_fast(items)
    except _FALLBACK_ERRORS:
        return decode_exact(items)


def _decode_fast(items: list[Item]) -> pd.DataFrame:
    ids: list[Any] = []
    emails: list[Any] = []
    visits: list[Any] = []
    optional: tuple[Values, ...] = ([], [], [], [])
    fuller: list[int] = []  # items with optional attributes, or an unusual shape
    unusual: list[int] = []  # items whose id, email or lastVisitAt is not S, S, N
    add_id, add_email, add_visit, add_fuller = (
        ids.append,
        emails.append,
        visits.append,
        fuller.append,
    )
    add_sent, add_trial, add_deal, add_subscription = (values.append for values in optional)
    sent, trial, deal, subscribed = _OPTIONAL
    id_key, email_key, visit_key = ID, EMAIL, LAST_VISIT_AT  # locals: the loop runs per item
    for item in items:
        try:
            user_id, email, visit = item[id_key]["S"], item[email_key]["S"], item[visit_key]["N"]
        except (KeyError, TypeError):
            user_id = email = visit = None
            unusual.append(len(ids))  # the item's position: one id is added per item
        else:
            if len(item) == 3:  # nothing optional: the usual case, kept short
                add_id(user_id)
                add_email(email)
                add_visit(visit)
                continue
        add_id(user_id)
        add_email(email)
        add_visit(visit)
        add_fuller(len(ids) - 1)
        get = item.get
        add_sent(get(sent))
        add_trial(get(trial))
        add_deal(get(deal))
        add_subscription(get(subscribed))
    size = len(items)
    required_errors = _read_unusual(items, unusual, (ids, emails, visits))
    last_visit, visit_errors = parse_numbers(
        pa.array(visits, type=pa.string()), LAST_VISIT_AT, **NUMBER_RULES[LAST_VISIT_AT]
    )
    where = np.array(fuller, dtype=np.int64)
    sent_at, sent_errors = _optional_numbers(optional[0], _OPTIONAL[0], where, size)
    trial_end, trial_errors = _optional_numbers(optional[1], _OPTIONAL[1], where, size)
    has_subscription, ends_at, subscription_errors = _subscriptions(optional[3], where, size)
    lifetime = np.zeros(size, dtype=bool)
    with_deal, deals = _present(optional[2], where)
    lifetime[with_deal] = [js_truthy(value) for value in deals]
    frame = pd.DataFrame(
        {
            ID: pd.arrays.ArrowStringArray(pa.array(ids, type=pa.string())),
            **email_columns(pa.array(emails, type=pa.string())),
            LAST_VISIT_AT: last_visit,
            EMAIL_SENT_AT: sent_at,
            FREE_TRIAL_END: trial_end,
            LIFETIME_DEAL: _flags(lifetime),
            "has_subscription": _flags(has_subscription),
            SUBSCRIPTION_ENDS_AT_COLUMN: ends_at,
            "malformed": first_error(
                *required_errors,
                visit_errors,
                sent_errors,
                trial_errors,
                subscription_errors,
            ),
        }
    )
    return frame  # built with SNAPSHOT_DTYPES: an astype would copy it


def _read_unusual(
    items: list[Item], unusual: list[int], columns: tuple[list[Any], ...]
) -> list[np.ndarray]:
    """Fill in the required attributes of unusual items as the reference decoder reads them;
    return each attribute's errors (id, email, lastVisitAt)."""
    size = len(items)
    errors = []
    for (name, member), column in zip(_REQUIRED, columns, strict=True):
        values = [items[i].get(name) for i in unusual]
        raw = pulled(values, member)
        for position, value in zip(unusual, raw.to_pylist(), strict=True):
            column[position] = value
        found = np.full(size, None, dtype=object)
        reason = about(name, NOT_A_STRING if member == "S" else NOT_A_NUMBER)
        found[np.array(unusual, dtype=np.int64)[wrong_type(values, member, raw)]] = reason
        errors.append(found)
    return errors


def _present(values: Values, where: np.ndarray) -> tuple[np.ndarray, Values]:
    """(positions in the chunk, values) of the values that are there. Compared by identity
    with None: a truth test would read every dict once more (an empty one reads as absent
    downstream anyway)."""
    there = list(map(operator.is_not, values, repeat(None)))
    return where[np.array(there, dtype=bool)], list(compress(values, there))


def _subscriptions(
    values: Values, where: np.ndarray, size: int
) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    at, present = _present(values, where)
    is_map, ends_at, errors = subscription(present)
    return (
        _scatter_flags(is_map, at, size),
        _scatter_ints(ends_at, at, size),
        _scatter_errors(errors, at, size),
    )


def _optional_numbers(
    values: Values, label: str, where: np.ndarray, size: int
) -> tuple[pd.Series, np.ndarray]:
    at, present = _present(values, where)
    parsed, errors = numbers(present, label, **NUMBER_RULES[label])
    return _scatter_ints(parsed, at, size), _scatter_errors(errors, at, size)


def _flags(values: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(values, np.zeros(len(values), dtype=bool))


def _scatter_ints(values: pd.Series, where: np.ndarray, size: int) -> pd.Series:
    data = np.zeros(size, dtype=np.int64)
    mask = np.ones(size, dtype=bool)
    data[where] = values.to_numpy(dtype=np.int64, na_value=0)
    mask[where] = values.isna().to_numpy()
    return pd.Series(pd.arrays.IntegerArray(data, mask))


def _scatter_flags(values: pd.Series, where: np.ndarray, size: int) -> np.ndarray:
    data = np.zeros(size, dtype=bool)
    data[where] = values.to_numpy(dtype=bool, na_value=False)
    return data


def _scatter_errors(errors: np.ndarray, where: np.ndarray, size: int) -> np.ndarray:
    full = np.full(size, None, dtype=object)
    full[where] = errors
    return full


def plain(value: dict[str, Any]) -> Any:
    """One attribute value of DynamoDB's wire format as plain JSON: numbers as numbers (whole
    ones exact), binary as base64 text, sets as lists, maps and lists walked through."""
    (kind, member), *_ = value.items()
    if kind == "S":
        return member
    if kind == "N":
        number = Decimal(member)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "B":
        return base64.b64encode(member if isinstance(member, bytes) else member.encode()).decode()
    if kind == "BOOL":
        return bool(member)
    if kind == "NULL":
        return None
    if kind == "M":
        return plain_item(member)
    if kind == "L":
        return [plain(entry) for entry in member]
    if kind in ("SS", "NS", "BS"):
        return [plain({kind[0]: entry}) for entry in member]
    raise ValueError(f"not a DynamoDB value: {kind!r}")


def plain_item(item: Item) -> dict[str, Any]:
    """An item (or key) of DynamoDB's wire format as a plain JSON object."""
    return {name: plain(value) for name, value in item.items()}
