"""Requests from the people themselves, decided without I/O: a person asks to be erased or for a
copy of their data, and the law gives the operator a deadline (30 days by default).

A request is opened with the time it was received; it is due `request_deadline_days` later and
stays `open` until it is `done` or `refused`. `days_left` is the time to the due date in days,
rounded down to the hundredth, so it is negative exactly when the request is overdue; the
deadline counts are read from that same figure. The requests table itself is read and written in
`aws/requests_table.py`; the clock is passed in.
"""

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from cleanup_pipeline.core.as_of import format_ms, parse_as_of
from cleanup_pipeline.core.decisions import DAY_MS, check_user_id
from cleanup_pipeline.core.masking import scrub_emails


class RequestKind(StrEnum):
    """What the person asks for."""

    ERASE = "erase"
    EXPORT = "export"


class RequestStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    REFUSED = "refused"


# Days left at or under which an open request is due soon.
DUE_SOON_DAYS = 3
# The deadline counts, in the order reports show them.
REQUESTS_OPEN, REQUESTS_DUE_SOON, REQUESTS_OVERDUE = (
    "requests_open",
    "requests_due_soon",
    "requests_overdue",
)
DEADLINE_COUNTS = (REQUESTS_OPEN, REQUESTS_DUE_SOON, REQUESTS_OVERDUE)
# The run's check that no open request is past its due date; it blocks nothing.
DEADLINE_CHECK = "erasure_requests_within_deadline"
# A reference is a ticket number or a short note; a longer text is a paste by mistake.
MAX_REF_CHARS = 1000

REQUESTS_OFF = (
    "REQUESTS_TABLE_NAME is not set: requests are off. Set it to the requests table's name "
    "(key id, string) to open or list requests."
)


class RequestError(ValueError):
    """A request that cannot be opened or read as asked; the message says why, on one line."""


@dataclass(frozen=True)
class Request:
    id: str
    user_id: str
    kind: RequestKind
    received_at: int  # epoch ms
    due_at: int  # epoch ms
    status: RequestStatus = RequestStatus.OPEN
    ref: str | None = None
    reason: str | None = None
    done_at: int | None = None
    run_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == RequestStatus.OPEN

    def days_left(self, now: int) -> float:
        return days_left(self.due_at, now)

    def as_json(self, now: int) -> dict[str, object]:
        """The stored record (times in epoch ms), with its due date written out and the days
        left at `now`."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "kind": str(self.kind),
            "ref": self.ref,
            "received_at": self.received_at,
            "due_at": self.due_at,
            "status": str(self.status),
            "reason": self.reason,
            "done_at": self.done_at,
            "run_id": self.run_id,
            "due": format_ms(self.due_at),
            "days_left": self.days_left(now),
        }


def due_at(received_at: int, deadline_days: float) -> int:
    return received_at + round(deadline_days * DAY_MS)


def days_left(due: int, now: int) -> float:
    """Days from `now` to `due`, rounded down to the hundredth: negative once `due` has passed,
    and never more than is left."""
    return math.floor((due - now) * 100 / DAY_MS) / 100


def deadline_counts(requests: Iterable[Request], now: int) -> dict[str, int]:
    """Open requests, and of those the ones due soon (0 to 3 days left) and overdue (less than 0
    days left)."""
    left = [request.days_left(now) for request in requests if request.is_open]
    return {
        REQUESTS_OPEN: len(left),
        REQUESTS_DUE_SOON: sum(1 for days in left if 0 <= days <= DUE_SOON_DAYS),
        REQUESTS_OVERDUE: sum(1 for days in left if days < 0),
    }


@dataclass(frozen=True)
class OpenRequests:
    """The open requests a run read, and when it read them: every deadline figure of the run
    (the counts, each request's days left, the overdue check) is taken at that one time, so
    they agree. No table: no requests, every count zero."""

    read_at: int  # epoch ms
    requests: tuple[Request, ...] = ()
    table: str | None = None

    def counts(self) -> dict[str, int]:
        return deadline_counts(self.requests, self.read_at)

    def by_due_date(self) -> list[Request]:
        """Most urgent first: the earliest due date first."""
        return sorted(self.requests, key=lambda request: (request.due_at, request.id))

    def overdue(self) -> list[Request]:
        return [r for r in self.by_due_date() if r.is_open and r.days_left(self.read_at) < 0]

    def after(self, closed: Collection[str]) -> "OpenRequests":
        """The same read without the requests whose ids are in `closed` (those the run closed):
        what is still open once the run has acted, each due date still counted at `read_at`."""
        return replace(self, requests=tuple(r for r in self.requests if r.id not in closed))


def request_kind(kind: str) -> RequestKind:
    try:
        return RequestKind(kind.strip())
    except ValueError:
        known = ", ".join(RequestKind)
        raise RequestError(f"unknown request kind {kind[:40]!r}: give one of {known}") from None


def new_request(
    request_id: str,
    user_id: str,
    kind: str,
    *,
    now: int,
    deadline_days: float,
    received: str | None = None,
    ref: str | None = None,
) -> Request:
    """An open request to store, or `RequestError` naming what is wrong: a kind that is not
    erase or export, an empty user id or one that cannot be a DynamoDB key (over 2,048 bytes),
    a reference over 1,000 characters, or a received time that is unparsable or after `now`.
    Addresses in the reference are masked, since it is shown in reports and the UI."""
    request_kind_ = request_kind(kind)
    try:
        user_id = check_user_id(user_id.strip(), "user id (USER_ID / user_id)")
    except ValueError as error:
        raise RequestError(str(error)) from None
    received_at = now
    if received is not None and received.strip():
        try:
            received_at = parse_as_of(received, "received (--received / received)")
        except ValueError as error:
            raise RequestError(str(error)) from None
        if received_at > now:
            raise RequestError(
                f"received {format_ms(received_at)} is in the future: give when the request "
                "arrived, at the latest now"
            )
    text = scrub_emails((ref or "").strip()) or None
    if text is not None and len(text) > MAX_REF_CHARS:
        raise RequestError(
            f"ref (--ref / ref) is longer than {MAX_REF_CHARS:,} characters: give a ticket "
            "number or a short note"
        )
    return Request(
        id=request_id,
        user_id=user_id,
        kind=request_kind_,
        received_at=received_at,
        due_at=due_at(received_at, deadline_days),
        ref=text,
    )


def oldest_first(requests: Iterable[Request]) -> list[Request]:
    return sorted(requests, key=lambda request: (request.received_at, request.id))


# Where access exports go when `request export` is given no `--out`; the IAM policy grants the
# export's reads (and, for an s3:// location, its writes there) only when it is set.
EXPORT_VARIABLE = "CLEANUP_EXPORT_DIR"


def _s3_parts(location: str) -> tuple[str, ...]:
    """An s3:// location as (bucket, *folders), without empty folders."""
    return tuple(part for part in location.removeprefix("s3://").split("/") if part)


def export_destination_problem(destination: str, guarded: dict[str, str]) -> str | None:
    """Why an s3:// export destination may not be used, if it may not: it is, holds or lies in
    one of the `guarded` locations (a name for messages -> an s3:// location), which the job's
    own files fill and read back."""
    wanted = _s3_parts(destination)
    if not wanted:
        return f"export destination {destination!r} names no bucket: give s3://bucket/prefix"
    for name, location in guarded.items():
        if not location.startswith("s3://"):
            continue
        theirs = _s3_parts(location)
        shorter = min(len(wanted), len(theirs))
        if wanted[:shorter] == theirs[:shorter]:
            return (
                f"export destination {destination} overlaps {name} ({location}): exports go to "
                "a location of their own"
            )
    return None


# What became of an erase request in a run, as its reason and in the report.
ERASED = "erased: nothing of the user is left in any store (verified)"
NO_SUCH_USER = "no such user"


def erasure_fate(outcome: str, step: str | None, error: str | None) -> tuple[RequestStatus, str]:
    """The status and reason of an erase request after its user's cascade ended with `outcome`:
    done only once the deletion is verified; otherwise it stays open, saying why, for the next
    run."""
    if outcome == "deleted":
        return RequestStatus.DONE, ERASED
    why = f"{outcome} at {step}" if step else outcome
    return RequestStatus.OPEN, f"{why}: {error}" if error else why
