"""A report's counts by outcome and by reason, under names that never change between runs.

Dagster plots a numeric metadata key across runs; a key missing from one run leaves a gap. So
every known outcome and reason is always counted, zero included, and a reason's key drops the
policy's day counts ("inactive over 60 days" and "inactive over 45 days" plot as one series).
"""

import re

import pandas as pd

from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.reasons import (
    EMAIL_MISSING,
    ID_DUPLICATED,
    ID_HAS_SLASH,
    ID_MISSING,
    INACTIVE_OVER,
    LAST_VISIT_IN_FUTURE,
    LAST_VISIT_IN_SECONDS,
    LAST_VISIT_MISSING,
    NOT_A_NUMBER,
    NOT_A_STRING,
    OUT_OF_RANGE,
    SUBSCRIPTION_NOT_A_MAP,
    WARNED_OVER,
    WITHIN_GRACE,
    about,
)
from cleanup_pipeline.core.report import OUTCOMES
from cleanup_pipeline.core.user_attributes import EMAIL, ID, NUMBER_ATTRIBUTES, SUBSCRIPTION_ENDS_AT

_NUMBER_FIELDS = (*NUMBER_ATTRIBUTES, SUBSCRIPTION_ENDS_AT)
_DEFAULT = Policy()

# The reasons a reported row can carry (SPEC §3): the decoder's and the rules' for invalid
# users, then the rules' for waiting, notify and delete at the default policy.
KNOWN_REASONS: tuple[str, ...] = (
    ID_MISSING,
    about(ID, NOT_A_STRING),
    ID_HAS_SLASH,
    ID_DUPLICATED,
    EMAIL_MISSING,
    about(EMAIL, NOT_A_STRING),
    LAST_VISIT_MISSING,
    LAST_VISIT_IN_SECONDS,
    LAST_VISIT_IN_FUTURE,
    *(about(field, NOT_A_NUMBER) for field in _NUMBER_FIELDS),
    *(about(field, OUT_OF_RANGE) for field in _NUMBER_FIELDS),
    SUBSCRIPTION_NOT_A_MAP,
    WITHIN_GRACE.format(days=_DEFAULT.grace_days),
    INACTIVE_OVER.format(days=_DEFAULT.notify_after_days),
    WARNED_OVER.format(days=_DEFAULT.grace_days),
)


def outcome_key(outcome: str) -> str:
    return f"outcome/{outcome}"


def reason_key(reason: str) -> str:
    """`lastVisitAt: missing` -> `reason/lastVisitAt_missing`; numbers become `n`."""
    text = re.sub(r"\d+", "n", reason.replace("'/'", "slash"))
    return "reason/" + re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


KNOWN_REASON_KEYS: tuple[str, ...] = tuple(dict.fromkeys(reason_key(r) for r in KNOWN_REASONS))


def outcome_totals(report: pd.DataFrame) -> dict[str, int]:
    """Rows per outcome: every known outcome (zero when absent), then any other seen."""
    seen = report["outcome"].astype("string").value_counts()
    totals = {str(outcome): int(seen.get(outcome, 0)) for outcome in OUTCOMES}
    totals.update({str(o): int(n) for o, n in seen.items() if o not in totals})
    return totals


def outcome_counts(report: pd.DataFrame) -> dict[str, int]:
    """`outcome_totals` under `outcome/<name>` metadata keys."""
    return {outcome_key(outcome): n for outcome, n in outcome_totals(report).items()}


def reason_counts(report: pd.DataFrame) -> dict[str, int]:
    """`reason/<slug>` for every known reason (zero when absent), then any other seen."""
    seen = report["reason"].astype("string").value_counts()
    counts = dict.fromkeys(KNOWN_REASON_KEYS, 0)
    for reason, n in seen.items():
        key = reason_key(str(reason))
        counts[key] = counts.get(key, 0) + int(n)
    return counts
