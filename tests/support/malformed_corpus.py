"""Malformed and odd user items in DynamoDB wire format, each with the decision SPEC §3 gives.

Every item is shaped like a delete candidate (warned 100 days ago, last seen 200 days ago) apart
from its one defect, so that a defect the rules missed would show up as an action.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from tests.support.items import ABSENT, DAY, NULL, Item, n, s, user

HUGE = 2_000


def email_for(wire_id: Any) -> str:
    """A distinct address per id, so that who was emailed can be told apart."""
    digest = hashlib.sha1(repr(wire_id).encode()).hexdigest()[:12]
    return f"u-{digest}@example.com"


def candidate(user_id: Any, as_of: int, **attributes: Any) -> Item:
    """A delete candidate at `as_of`; keyword arguments replace (or, with ABSENT, drop)
    attributes. `user_id` may be a wire value or ABSENT when the id itself is the defect."""
    wire_id = s(user_id) if isinstance(user_id, str) else user_id
    defaults = {
        "email": s(email_for(wire_id)),
        "lastVisitAt": n(as_of - 200 * DAY),
        "accountDeletionEmailSentAt": n(as_of - 100 * DAY),
    }
    return user(wire_id, **{**defaults, **attributes})


def warnable(user_id: str, as_of: int) -> Item:
    """A notify candidate at `as_of`: away for 70 days, never warned."""
    return candidate(
        user_id, as_of, lastVisitAt=n(as_of - 70 * DAY), accountDeletionEmailSentAt=ABSENT
    )


@dataclass(frozen=True)
class Malformed:
    """Items the rules must classify `invalid` with a reason containing `reason`.

    `storable` is False for items DynamoDB refuses to hold (a key that is missing, empty, not a
    string, or repeated; numbers such as NaN or 1e400): only the decoder can ever meet those.
    """

    name: str
    items: tuple[Item, ...]
    reason: str
    storable: bool = True

    @property
    def user_id(self) -> str:
        return self.items[0]["id"]["S"]


@dataclass(frozen=True)
class OddButValid:
    """Items that look wrong but are not invalid under SPEC §3: `decision` and `reason` are
    what the rules must give."""

    name: str
    item: Item
    decision: str
    reason: str

    @property
    def user_id(self) -> str:
        return self.item["id"]["S"]


def _malformed(as_of: int, now: int) -> list[Malformed]:
    def one(name: str, reason: str, storable: bool = True, **attrs: Any) -> Malformed:
        return Malformed(name, (candidate(f"bad-{name}", as_of, **attrs),), reason, storable)

    def bad_id(name: str, wire_id: Any, reason: str, storable: bool) -> Malformed:
        return Malformed(name, (candidate(wire_id, as_of),), reason, storable)

    seconds = (as_of - 200 * DAY) // 1000
    huge_list = {"L": [n(i) for i in range(HUGE)]}
    return [
        # lastVisitAt of the wrong type
        one("last-visit-string", "lastVisitAt: not a number", lastVisitAt=s(str(as_of))),
        one("last-visit-nan-string", "lastVisitAt: not a number", lastVisitAt=s("NaN")),
        one("last-visit-bool", "lastVisitAt: not a number", lastVisitAt={"BOOL": True}),
        one("last-visit-map", "lastVisitAt: not a number", lastVisitAt={"M": {"N": n(as_of)}}),
        one("last-visit-list", "lastVisitAt: not a number", lastVisitAt={"L": [n(as_of)]}),
        one("last-visit-number-set", "lastVisitAt: not a number", lastVisitAt={"NS": [str(as_of)]}),
        one("last-visit-binary", "lastVisitAt: not a number", lastVisitAt={"B": b"\x01\x02"}),
        # lastVisitAt missing or implausible
        one("last-visit-missing", "lastVisitAt: missing", lastVisitAt=ABSENT),
        one("last-visit-null", "lastVisitAt: missing", lastVisitAt=NULL),
        one("last-visit-seconds", "looks like seconds", lastVisitAt=n(seconds)),
        one("last-visit-fractional-seconds", "looks like seconds", lastVisitAt=n(f"{seconds}.5")),
        one("last-visit-negative", "looks like seconds", lastVisitAt=n(-(as_of - 200 * DAY))),
        one("last-visit-zero", "looks like seconds", lastVisitAt=n(0)),
        one("last-visit-minus-zero", "looks like seconds", lastVisitAt=n("-0")),
        one("last-visit-far-future", "in the future", lastVisitAt=n(now + 400 * DAY)),
        one("last-visit-microseconds", "in the future", lastVisitAt=n((as_of - 200 * DAY) * 1000)),
        one("last-visit-1e125", "lastVisitAt: number out of range", lastVisitAt=n("1E+125")),
        one("last-visit-38-digits", "lastVisitAt: number out of range", lastVisitAt=n("9" * 38)),
        one("last-visit-2p53-plus-1", "lastVisitAt: number out of range", lastVisitAt=n(2**53 + 1)),
        one("last-visit-1e400", "lastVisitAt: number out of range", False, lastVisitAt=n("1e400")),
        one("last-visit-nan", "lastVisitAt: number out of range", False, lastVisitAt=n("NaN")),
        one(
            "last-visit-inf", "lastVisitAt: number out of range", False, lastVisitAt=n("-Infinity")
        ),
        one(
            "last-visit-not-numeric", "lastVisitAt: number out of range", False, lastVisitAt=n("x")
        ),
        # email
        one("email-number", "email: not a string", email=n(1)),
        one("email-string-set", "email: not a string", email={"SS": ["a@example.com"]}),
        one("email-missing", "email: missing or empty", email=ABSENT),
        one("email-null", "email: missing or empty", email=NULL),
        one("email-empty", "email: missing or empty", email=s("")),
        # id
        bad_id("id-missing", ABSENT, "id: missing or empty", False),
        bad_id("id-number", n(42), "id: not a string", False),
        bad_id("id-null", NULL, "id: missing or empty", False),
        bad_id("id-empty", s(""), "id: missing or empty", False),
        bad_id("id-slash", s("bad-a/b"), "id: contains '/'", True),
        bad_id("id-only-slash", s("/"), "id: contains '/'", True),
        bad_id("id-parent-dir", s("../bad-parent"), "id: contains '/'", True),
        bad_id("id-trailing-slash", s("pad-001/"), "id: contains '/'", True),
        bad_id("id-spaces-around-slash", s("bad / spaced"), "id: contains '/'", True),
        bad_id("id-long-with-slash", s("l" * 900 + "/x"), "id: contains '/'", True),
        Malformed(
            "id-duplicated",
            (candidate("bad-dup", as_of), candidate("bad-dup", as_of, email=s("other@ex.com"))),
            "id: duplicated in snapshot",
            storable=False,
        ),
        # optional numbers of the wrong type
        one(
            "sent-at-string",
            "accountDeletionEmailSentAt: not a number",
            accountDeletionEmailSentAt=s(str(as_of)),
        ),
        one(
            "sent-at-bool",
            "accountDeletionEmailSentAt: not a number",
            accountDeletionEmailSentAt={"BOOL": False},
        ),
        one("trial-end-string", "freeTrialEnd: not a number", freeTrialEnd=s("2030-01-01")),
        one("trial-end-map", "freeTrialEnd: not a number", freeTrialEnd={"M": {}}),
        # subscription
        one("subscription-list", "subscription: not a map", subscription={"L": [s("sub")]}),
        one("subscription-string", "subscription: not a map", subscription=s("premium")),
        one("subscription-bool", "subscription: not a map", subscription={"BOOL": True}),
        one("subscription-huge-list", "subscription: not a map", subscription=huge_list),
        one(
            "subscription-ends-at-string",
            "subscription.endsAt: not a number",
            subscription={"M": {"status": s("canceled"), "endsAt": s("2030-01-01")}},
        ),
        one(
            "subscription-ends-at-bool",
            "subscription.endsAt: not a number",
            subscription={"M": {"endsAt": {"BOOL": True}}},
        ),
        one(
            "subscription-ends-at-map",
            "subscription.endsAt: not a number",
            subscription={"M": {"endsAt": {"M": {"at": n(as_of + DAY)}}}},
        ),
        # huge values next to a real defect: the defect still decides
        one(
            "huge-extra-attribute",
            "lastVisitAt: not a number",
            lastVisitAt=s("yesterday"),
            history={"L": [s("visit") for _ in range(HUGE)]},
        ),
        one(
            "huge-lifetime-deal-no-email",
            "email: missing or empty",
            email=ABSENT,
            **{"lifeTimeDeal": huge_list},
        ),
    ]


def malformed_corpus(as_of: int, now: int) -> list[Malformed]:
    corpus = _malformed(as_of, now)
    names = [entry.name for entry in corpus]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return corpus


def odd_but_valid(as_of: int) -> list[OddButValid]:
    """Ids with spaces, unicode or great length are valid ids (SPEC §3 rejects only missing,
    empty, or containing '/'); values SPEC reads as numbers, maps or truthy are used as such."""

    def odd(name: str, user_id: str, decision: str, reason: str, **attrs: Any) -> OddButValid:
        return OddButValid(name, candidate(user_id, as_of, **attrs), decision, reason)

    deleted, over = "delete", "warned over 30 days ago"
    return [
        odd("id-whitespace-only", " ", deleted, over),
        odd("id-leading-spaces", "  odd-lead", deleted, over),
        odd("id-trailing-spaces", "odd-trail  ", deleted, over),
        odd("id-unicode", "odd-ü-用户-😀", deleted, over),
        odd("id-very-long", "odd-" + "x" * 996, deleted, over),
        odd(
            "id-dot-dot", "..", "notify", "inactive over 60 days", accountDeletionEmailSentAt=ABSENT
        ),
        odd("id-backslash", "odd\\back", deleted, over),
        odd("email-whitespace-only", "odd-email-blank", deleted, over, email=s("   ")),
        odd(
            "huge-extra-attribute",
            "odd-huge-extra",
            deleted,
            over,
            history={"L": [s("visit") for _ in range(HUGE)]},
        ),
        odd(
            "huge-lifetime-deal-list",
            "odd-huge-lifetime",
            "exempt",
            "lifetime",
            lifeTimeDeal={"L": [n(0) for _ in range(HUGE)]},
        ),
        odd(
            "lifetime-empty-list",
            "odd-lifetime-empty-list",
            "exempt",
            "lifetime",
            lifeTimeDeal={"L": []},
        ),
        odd("lifetime-string-zero", "odd-lifetime-0", "exempt", "lifetime", lifeTimeDeal=s("0")),
        odd("lifetime-minus-zero", "odd-lifetime-minus-0", deleted, over, lifeTimeDeal=n("-0")),
        odd("lifetime-empty-string", "odd-lifetime-empty", deleted, over, lifeTimeDeal=s("")),
        odd("lifetime-null", "odd-lifetime-null", deleted, over, lifeTimeDeal=NULL),
        odd("subscription-null", "odd-sub-null", deleted, over, subscription=NULL),
        odd(
            "subscription-empty-map",
            "odd-sub-empty",
            "exempt",
            "subscriber",
            subscription={"M": {}},
        ),
        odd(
            "subscription-ends-at-null",
            "odd-sub-ends-null",
            "exempt",
            "subscriber",
            subscription={"M": {"status": s("active"), "endsAt": NULL}},
        ),
        odd(
            "sent-at-null",
            "odd-sent-null",
            "notify",
            "inactive over 60 days",
            accountDeletionEmailSentAt=NULL,
        ),
        odd("trial-end-null", "odd-trial-null", deleted, over, freeTrialEnd=NULL),
        odd(
            "sent-at-negative",
            "odd-sent-negative",
            "notify",
            "inactive over 60 days",
            accountDeletionEmailSentAt=n(-5),
        ),
        odd(
            "last-visit-fractional-ms",
            "odd-last-visit-fraction",
            deleted,
            over,
            lastVisitAt=n(f"{as_of - 200 * DAY}.5"),
        ),
        odd(
            "trial-end-half-ms-after-as-of",
            "odd-trial-fraction",
            "exempt",
            "trial",
            freeTrialEnd=n(f"{as_of}.5"),
        ),
        odd(
            "ends-at-half-ms-after-as-of",
            "odd-ends-fraction",
            "exempt",
            "subscriber",
            subscription={"M": {"endsAt": n(f"{as_of}.5")}},
        ),
        odd("trial-end-1e125", "odd-trial-huge", "exempt", "trial", freeTrialEnd=n("1E+125")),
        odd(
            "ends-at-1e125",
            "odd-ends-huge",
            "exempt",
            "subscriber",
            subscription={"M": {"endsAt": n("1E+125")}},
        ),
        odd(
            "sent-at-1e125",
            "odd-sent-huge",
            "waiting",
            "grace period",
            accountDeletionEmailSentAt=n("1E+125"),
        ),
        odd(
            "trial-end-minus-1e125",
            "odd-trial-minus-huge",
            deleted,
            over,
            freeTrialEnd=n("-1E+125"),
        ),
    ]
