"""Attribute names of the users table (SPEC §2), named once for decoding, reads and writes."""

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
