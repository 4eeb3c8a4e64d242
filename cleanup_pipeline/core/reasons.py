"""Why a user got their decision: the reason texts of the rules (SPEC §3) and of the decoder.

Reports count users by these texts, so each is written here once.
"""

from cleanup_pipeline.core.user_attributes import EMAIL, ID, LAST_VISIT_AT, SUBSCRIPTION


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
