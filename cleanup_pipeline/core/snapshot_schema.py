"""Columns of the users snapshot: what the decision rules read, with explicit dtypes.

The snapshot never holds email addresses: only whether one is present and its masked form.
"""

import pandas as pd

from cleanup_pipeline.core.user_attributes import (
    ID,
    LIFETIME_DEAL,
    NUMBER_ATTRIBUTES,
    SUBSCRIPTION_ENDS_AT_COLUMN,
)

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
