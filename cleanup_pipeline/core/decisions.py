"""SPEC §3 as one vectorised function: the decision for every user in a snapshot.

Pure: no I/O, no clock. `as_of` (the run's reference time) and `now` (the wall clock, used only
to reject timestamps from the future) are always passed in.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cleanup_pipeline.core.holds import EXEMPT_USER_IDS
from cleanup_pipeline.core.policy import DAY_MS, Policy
from cleanup_pipeline.core.reasons import (
    ACTIVE_REASON,
    EMAIL_MISSING,
    HOLD,
    ID_DUPLICATED,
    ID_HAS_SLASH,
    ID_MISSING,
    INACTIVE_OVER,
    LAST_VISIT_IN_FUTURE,
    LAST_VISIT_IN_SECONDS,
    LAST_VISIT_MISSING,
    LIFETIME,
    MALFORMED,
    SUBSCRIBER,
    TRIAL,
    WARNED_OVER,
    WITHIN_GRACE,
)
from cleanup_pipeline.core.snapshot_schema import MIN_PLAUSIBLE_MS
from cleanup_pipeline.core.user_attributes import (
    EMAIL_SENT_AT,
    FREE_TRIAL_END,
    ID,
    LAST_VISIT_AT,
    LIFETIME_DEAL,
    NUMBER_ATTRIBUTES,
    SUBSCRIPTION_ENDS_AT_COLUMN,
)
from cleanup_pipeline.core.vocabulary import Decision

INVALID, EXEMPT, ACTIVE, WAITING, NOTIFY, DELETE = Decision
DECISIONS: tuple[Decision, ...] = tuple(Decision)
# The key of the total in `count_decisions`, beside one key per decision.
USERS = "users"
COUNT_KEYS: tuple[str, ...] = (USERS, *DECISIONS)
DECISION_DTYPE = pd.CategoricalDtype([str(d) for d in DECISIONS])

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
) -> pd.DataFrame:
    """Return one row per snapshot row: id, email_masked, decision, reason, the timestamps used,
    whole days inactive, and why a held user is held. The first rule that applies decides
    (SPEC §3 order). `holds` ({user id: reason}) are the active persistent holds, on top of the
    policy's `exempt_user_ids`."""
    ids = snapshot[ID].astype("string[pyarrow]")
    hold_reason = _hold_reasons(ids, policy, holds or {})
    malformed = snapshot["malformed"].astype("category")
    last_visit, has_last_visit = _ints(snapshot[LAST_VISIT_AT])
    sent_at, has_sent_at = _ints(snapshot[EMAIL_SENT_AT])
    trial_end, has_trial_end = _ints(snapshot[FREE_TRIAL_END])
    ends_at, has_ends_at = _ints(snapshot[SUBSCRIPTION_ENDS_AT_COLUMN])
    warned = has_sent_at & (last_visit < sent_at)
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
        (has_trial_end & (trial_end > as_of), EXEMPT, TRIAL),
        (_flags(snapshot[LIFETIME_DEAL]), EXEMPT, LIFETIME),
        (
            _flags(snapshot["has_subscription"]) & (~has_ends_at | (ends_at > as_of)),
            EXEMPT,
            SUBSCRIBER,
        ),
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
    rule = np.select([cond for cond, _, _ in rules], np.arange(len(rules)), default=len(rules))
    decision_of_rule = np.array(
        [DECISIONS.index(d) for _, d, _ in rules] + [DECISIONS.index(ACTIVE)], dtype="int8"
    )
    decision = pd.Categorical.from_codes(decision_of_rule[rule], dtype=DECISION_DTYPE)

    # Malformed rows take their reason from the decoder; every other row from its rule.
    texts = [text for _, _, text in rules] + [ACTIVE_REASON]
    reason_codes = np.where(rule == 0, len(texts) + malformed.cat.codes.to_numpy(), rule).astype(
        "int32"
    )
    reason = pd.Categorical.from_codes(
        reason_codes, categories=texts + list(malformed.cat.categories)
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
    }
    return pd.DataFrame(columns)


def count_decisions(decisions: pd.DataFrame) -> dict[str, int]:
    """Number of users per decision, every decision present (zero when none)."""
    counts = decisions["decision"].value_counts().reindex(list(DECISIONS), fill_value=0)
    return {USERS: len(decisions), **{str(label): int(n) for label, n in counts.items()}}
