"""Decoding of DynamoDB items, as the low-level client returns them, into the snapshot.

boto3's `TypeDeserializer` walks every attribute in Python and is far too slow for millions of
users. What costs here is touching a million small dicts scattered in memory (about 0.25 s per
pass over 1,000,000 on a 2-core machine), not the work done on each. So one pass reads the three
attributes every user has in their usual shape (`{"S": ...}`, `{"N": ...}`) and notes which items
have more; pyarrow and numpy convert the columns. The few items of any other shape (an id or
email missing, NULL, of the wrong type) and the optional attributes are read by the reference
functions of wire_exact.py, which give them the same values and reasons as always; so is a whole
chunk if the fast path raises.
"""

import operator
from itertools import compress, repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cleanup_pipeline.core.reasons import NOT_A_NUMBER, NOT_A_STRING, about
from cleanup_pipeline.core.snapshot_schema import SNAPSHOT_DTYPES, empty_snapshot
from cleanup_pipeline.core.user_attributes import (
    EMAIL,
    EMAIL_SENT_AT,
    FREE_TRIAL_END,
    ID,
    LAST_VISIT_AT,
    LIFETIME_DEAL,
    PROJECTED_ATTRIBUTES,
    SUBSCRIPTION,
    SUBSCRIPTION_ENDS_AT_COLUMN,
)
from cleanup_pipeline.core.wire_exact import (
    NUMBER_RULES,
    Item,
    Values,
    decode_exact,
    email_columns,
    first_error,
    js_truthy,
    numbers,
    parse_numbers,
    pulled,
    subscription,
    wrong_type,
)

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
