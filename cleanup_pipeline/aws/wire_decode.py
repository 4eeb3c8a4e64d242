"""Columnar decoding of DynamoDB items, as the low-level client returns them, into the snapshot.

boto3's `TypeDeserializer` walks every attribute in Python and is far too slow for millions of
users; here each column is pulled out with one list comprehension and converted by pandas.
A value of the wrong type is never fatal: the row is kept and flagged in `malformed`.
"""

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleanup_pipeline.core.masking import mask_emails
from cleanup_pipeline.core.snapshot_schema import SNAPSHOT_DTYPES, empty_snapshot

Item = dict[str, dict[str, Any]]

# Largest integer float64 holds exactly; anything above is not a plausible timestamp.
_MAX_EXACT = 2**53

NUMBER_ATTRIBUTES = ("lastVisitAt", "accountDeletionEmailSentAt", "freeTrialEnd")
PROJECTED_ATTRIBUTES = (
    "id",
    "email",
    "lastVisitAt",
    "accountDeletionEmailSentAt",
    "freeTrialEnd",
    "lifeTimeDeal",
    "subscription",
)


def _wrong_type(values: list[dict[str, Any] | None], expected: str) -> list[int]:
    """Positions holding a value that is neither `expected` nor NULL (NULL counts as absent)."""
    return [i for i, v in enumerate(values) if v and expected not in v and "NULL" not in v]


def _numbers(
    values: list[dict[str, Any] | None], label: str, huge_is_error: bool = True, up: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """Decode an optional N attribute: (Int64 series, per-row error text or None).

    A fraction is rounded down, or up with `up` (for ends compared as `end > as_of`, so that
    rounding never ends an exemption early). Beyond ±2**53 a value is an error, or with
    `huge_is_error=False` clamped to ±2**53, which keeps its order against any real time.
    """
    raw = pa.array([v.get("N") if v else None for v in values], type=pa.string())
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
    result = pd.array((np.ceil if up else np.floor)(kept).astype("int64"), dtype="Int64")
    result[~ok] = pd.NA
    errors = np.full(len(values), None, dtype=object)
    errors[is_number & ~finite] = f"{label}: number out of range"
    errors[_wrong_type(values, "N")] = f"{label}: not a number"
    return pd.Series(result), errors


def _strings(values: list[dict[str, Any] | None], label: str) -> tuple[pd.Series, np.ndarray]:
    raw = pa.array([v.get("S") if v else None for v in values], type=pa.string())
    errors = np.full(len(values), None, dtype=object)
    errors[_wrong_type(values, "S")] = f"{label}: not a string"
    return pd.Series(pd.arrays.ArrowStringArray(raw)), errors


def _js_truthy(value: dict[str, Any] | None) -> bool:
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


def _subscription(
    values: list[dict[str, Any] | None],
) -> tuple[pd.Series, pd.Series, np.ndarray]:
    maps = [v.get("M") if v else None for v in values]
    ends_at, errors = _numbers(
        [m.get("endsAt") if m is not None else None for m in maps],
        "subscription.endsAt",
        huge_is_error=False,
        up=True,
    )
    errors[_wrong_type(values, "M")] = "subscription: not a map"
    is_map = pd.Series([m is not None for m in maps], dtype="boolean")
    return is_map, ends_at, errors


def _first_error(*columns: np.ndarray) -> pd.Series:
    """Per row, the first error found in column order, else NA."""
    merged = columns[-1].copy()
    for errors in reversed(columns[:-1]):
        found = pd.notna(errors)
        merged[found] = errors[found]
    return pd.Series(pd.Categorical(merged))


def decode_items(items: list[Item]) -> pd.DataFrame:
    """Decode scanned user items into a snapshot frame with `SNAPSHOT_DTYPES`."""
    if not items:
        return empty_snapshot()
    ids, id_errors = _strings([item.get("id") for item in items], "id")
    emails, email_errors = _strings([item.get("email") for item in items], "email")
    decoded: dict[str, Any] = {"id": ids}
    errors = [id_errors, email_errors]
    for name in NUMBER_ATTRIBUTES:
        decoded[name], number_errors = _numbers(
            [item.get(name) for item in items],
            name,
            # SPEC §3 rejects a huge lastVisitAt (future) but only non-numbers elsewhere.
            huge_is_error=name == "lastVisitAt",
            up=name == "freeTrialEnd",
        )
        errors.append(number_errors)
    has_subscription, ends_at, subscription_errors = _subscription(
        [item.get("subscription") for item in items]
    )
    errors.append(subscription_errors)
    frame = pd.DataFrame(
        {
            "id": ids,
            "has_email": (emails.fillna("") != "").astype("boolean"),
            "email_masked": mask_emails(emails.where(emails != "")),
            **{name: decoded[name] for name in NUMBER_ATTRIBUTES},
            "lifeTimeDeal": pd.Series(
                [_js_truthy(item.get("lifeTimeDeal")) for item in items],
                dtype="boolean",
            ),
            "has_subscription": has_subscription,
            "subscription_endsAt": ends_at,
            "malformed": _first_error(*errors),
        }
    )
    return frame.astype(SNAPSHOT_DTYPES)
