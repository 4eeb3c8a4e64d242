"""The reference decoder: every attribute of every item read on its own, whatever its shape.

`decode_items` (wire_decode.py) sends here the items whose shape its fast path does not take,
and whole chunks when that path raises; the functions below also decode the optional
attributes of the other items. A value of the wrong type is never fatal: the row is kept and
flagged in `malformed`.
"""

import operator
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleanup_pipeline.core.masking import mask_emails
from cleanup_pipeline.core.reasons import (
    NOT_A_NUMBER,
    NOT_A_STRING,
    OUT_OF_RANGE,
    SUBSCRIPTION_NOT_A_MAP,
    about,
)
from cleanup_pipeline.core.snapshot_schema import SNAPSHOT_DTYPES, empty_snapshot
from cleanup_pipeline.core.user_attributes import (
    EMAIL,
    EMAIL_SENT_AT,
    ENDS_AT,
    FREE_TRIAL_END,
    ID,
    LAST_VISIT_AT,
    LIFETIME_DEAL,
    NUMBER_ATTRIBUTES,
    SUBSCRIPTION,
    SUBSCRIPTION_ENDS_AT,
    SUBSCRIPTION_ENDS_AT_COLUMN,
)

Item = dict[str, dict[str, Any]]
Values = list[dict[str, Any] | None]

# Largest integer float64 holds exactly; anything above is not a plausible timestamp.
_MAX_EXACT = 2**53

NUMBER_ATTRIBUTES = NUMBER_ATTRIBUTES
# How each number is read (SPEC §3): a huge lastVisitAt is in the future, hence an error, but
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
