"""Attribute names of the users table (SPEC §2), named once for decoding, reads and writes,
and what a user id given by an operator may be."""

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
