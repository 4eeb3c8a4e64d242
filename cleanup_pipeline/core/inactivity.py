"""How long users have stayed away at `as_of`, in buckets an operator reads at a glance."""

import numpy as np
import pandas as pd

from cleanup_pipeline.core.policy import DAY_MS
from cleanup_pipeline.core.vocabulary import Decision

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
