"""The words a run uses for what it decided about each user and what came of it, defined once.

Members are `StrEnum`s: each equals its string, so stored reports, run tags and metadata keys
("delete", "outcome/warned") read exactly as they always have.
"""

from enum import StrEnum


class Decision(StrEnum):
    """What the decision rules decide for a user, in rule order; `erase` (the person asked to
    be erased) is decided right after the holds, and listed last so that stored decisions keep
    their codes."""

    INVALID = "invalid"
    EXEMPT = "exempt"
    ACTIVE = "active"
    WAITING = "waiting"
    NOTIFY = "notify"
    DELETE = "delete"
    ERASE = "erase"


class Outcome(StrEnum):
    """What happened to a reported user: the action steps' own outcomes, then the report's
    defaults for users no action step reported on."""

    WARNED = "warned"
    DELETED = "deleted"
    # The user item was gone when this run's conditional delete came: another run (or the app)
    # deleted the account meanwhile; that deletion is recorded by whoever made it.
    DELETED_BY_OTHER_RUN = "deleted_by_other_run"
    SKIPPED = "skipped"
    # No longer a delete candidate when the user item was to go (came back, subscribed, held):
    # the account stays and what the cascade had hidden or removed was put back.
    KEPT = "kept"
    # As `kept`, but some files could not come back (a bucket that keeps no versions).
    KEPT_PARTIAL = "kept_partial"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    NOT_ATTEMPTED = "not_attempted"
    # A candidate left for a later run: not that kind of candidate in the approved run's report.
    NOT_APPROVED = "not_approved"
    NO_ACTION = "no_action"


# The decisions an action step acts on; also the `action` column of its outcomes.
ACTIONS: tuple[Decision, ...] = (Decision.NOTIFY, Decision.DELETE, Decision.ERASE)
