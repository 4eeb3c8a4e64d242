"""Synthetic users in DynamoDB wire format, exactly as the low-level client returns them.

Every profile maps to one outcome of the decision rules; `expected` gives that outcome so that
the benchmark can check the job decided what the data says.
"""

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.core.policy import DAY_MS
from cleanup_pipeline.core.wire_decode import PROJECTED_ATTRIBUTES

Item = dict[str, dict[str, Any]]

# Share of users per profile in a large production table: mostly active, a few percent at
# each stage of the warn-then-delete cycle, exemptions, and a sprinkle of malformed records.
REALISTIC_MIX: dict[str, float] = {
    "active": 0.50,
    "notify": 0.12,
    "notify_again": 0.02,
    "waiting": 0.08,
    "delete": 0.04,
    "came_back": 0.04,
    "trial": 0.05,
    "lifetime": 0.03,
    "subscriber": 0.06,
    "cancelled": 0.035,
    "odd_but_valid": 0.02,
    "invalid": 0.005,
}

# Expected decision per profile.
EXPECTED: dict[str, str] = {
    "active": "active",
    "notify": "notify",
    "notify_again": "notify",
    "waiting": "waiting",
    "delete": "delete",
    "came_back": "active",
    "trial": "exempt",
    "lifetime": "exempt",
    "subscriber": "exempt",
    "cancelled": "active",
    "odd_but_valid": "active",
    "invalid": "invalid",
}

# Attributes the app stores besides the projected ones (they count towards the 1 MB scan page).
EXTRA_ATTRIBUTES = ("name", "timeZone", "country", "focusSounds")
# Values that look like an exemption but are not one (None: a trial that ended yesterday).
ODD_VALUES: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("lifeTimeDeal", {"BOOL": False}),
    ("lifeTimeDeal", {"N": "0"}),
    ("lifeTimeDeal", {"S": ""}),
    ("lifeTimeDeal", {"NULL": True}),
    ("subscription", {"NULL": True}),
    ("freeTrialEnd", {"NULL": True}),
    ("freeTrialEnd", None),
)
FIRST_NAMES = ("ana", "ben", "chloe", "dmitri", "elif", "femi", "grace", "hiro", "ines", "jon")


def e2e_mix(delete_share: float) -> dict[str, float]:
    """The mix seeded into moto: notify candidates are added separately, in a fixed small
    number, so that the end-to-end time is not the time of sending warnings."""
    mix = {k: v for k, v in REALISTIC_MIX.items() if k not in ("notify", "notify_again")}
    mix["delete"] = delete_share
    mix["invalid"] = 0.004
    mix["active"] = 0.0
    mix["active"] = max(0.0, 1.0 - sum(mix.values()))
    return mix


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class UserFactory:
    """Builds one user item per profile; `full` adds the attributes a projection leaves out."""

    def __init__(self, now: int, seed: int, full: bool) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self.full = full

    def _ago(self, low_days: int, high_days: int) -> int:
        return self.now - self.rng.randint(low_days * 24, high_days * 24) * (DAY_MS // 24)

    def build(self, i: int, profile: str) -> Item:
        rng = self.rng
        name = FIRST_NAMES[i % len(FIRST_NAMES)]
        item: Item = {"id": {"S": f"user-{i:07d}"}, "email": {"S": f"{name}.{i}@example.com"}}
        if profile == "active":
            item["lastVisitAt"] = _n(self._ago(0, 59))
        elif profile == "notify":
            item["lastVisitAt"] = _n(self._ago(61, 400))
        elif profile == "notify_again":  # warned long ago, came back, inactive again
            item["accountDeletionEmailSentAt"] = _n(self._ago(200, 300))
            item["lastVisitAt"] = _n(self._ago(61, 150))
        elif profile in ("waiting", "delete"):
            sent = self._ago(1, 29) if profile == "waiting" else self._ago(31, 80)
            item["accountDeletionEmailSentAt"] = _n(sent)
            item["lastVisitAt"] = _n(sent - rng.randint(61, 200) * DAY_MS)
        elif profile == "came_back":
            item["lastVisitAt"] = _n(self._ago(0, 20))
            item["accountDeletionEmailSentAt"] = _n(self._ago(21, 80))
        elif profile == "trial":
            item["lastVisitAt"] = _n(self._ago(61, 120))
            item["freeTrialEnd"] = _n(self.now + rng.randint(1, 14) * DAY_MS)
        elif profile == "lifetime":
            item["lastVisitAt"] = _n(self._ago(61, 400))
            item["lifeTimeDeal"] = rng.choice([{"BOOL": True}, _n(1), {"S": "appsumo"}])
        elif profile in ("subscriber", "cancelled"):
            cancelled = profile == "cancelled"
            item["lastVisitAt"] = _n(self._ago(0, 59) if cancelled else self._ago(0, 300))
            subscription: dict[str, Any] = {
                "id": {"S": f"sub-{i}"},
                "planId": {"S": rng.choice(("monthly", "yearly"))},
                "status": {"S": "canceled" if cancelled else "active"},
            }
            if cancelled:
                subscription["endsAt"] = _n(self.now - rng.randint(1, 200) * DAY_MS)
            elif rng.random() < 0.5:
                subscription["nextBilledAt"] = _n(self.now + rng.randint(1, 30) * DAY_MS)
            else:
                subscription["endsAt"] = _n(self.now + rng.randint(1, 300) * DAY_MS)
            item["subscription"] = {"M": subscription}
        elif profile == "odd_but_valid":  # falsy or NULL values that must not change anything
            item["lastVisitAt"] = _n(self._ago(0, 59))
            attribute, value = rng.choice(ODD_VALUES)
            item[attribute] = value if value is not None else _n(self.now - DAY_MS)
        elif profile == "invalid":
            kind = rng.randrange(5)
            if kind == 0:
                item["lastVisitAt"] = _n(self._ago(61, 90) // 1000)  # seconds, not ms
            elif kind == 1:
                item["lastVisitAt"] = {"S": "2026-01-01"}
            elif kind == 2:
                item["lastVisitAt"] = _n(self._ago(0, 59))
                del item["email"]
            elif kind == 3:
                item["lastVisitAt"] = _n(self._ago(0, 59))
                item["subscription"] = {"S": "premium"}
            else:
                item["lastVisitAt"] = _n(self.now + 400 * DAY_MS)
        else:
            raise ValueError(f"unknown profile {profile!r}")
        if self.full:
            item["name"] = {"S": name.title()}
            item["timeZone"] = _n(rng.choice((-300, 0, 60, 120, 330, 540)))
            item["country"] = {"S": rng.choice(("US", "DE", "IN", "BR", "JP", "GB"))}
            item["focusSounds"] = {"L": [{"S": "rain"}, {"S": "cafe"}]}
        return item


@dataclass(frozen=True)
class GeneratedUser:
    profile: str
    item: Item


def generate_users(
    count: int, now: int, mix: dict[str, float], seed: int = 7, full: bool = False
) -> Iterator[GeneratedUser]:
    """`count` users with profiles drawn from `mix` (deterministic for a given seed)."""
    factory = UserFactory(now, seed, full)
    names, weights = list(mix), list(mix.values())
    profiles = random.Random(seed + 1).choices(names, weights, k=count)
    for i, profile in enumerate(profiles):
        yield GeneratedUser(profile, factory.build(i, profile))


def project(item: Item) -> Item:
    """What a Scan with the job's ProjectionExpression returns for `item`."""
    return {name: item[name] for name in PROJECTED_ATTRIBUTES if name in item}


def _value_size(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return (len(inner.lstrip("-")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    return len(json.dumps(inner))


def item_size(item: Item) -> int:
    """DynamoDB's size of an item: attribute names plus values (the unit of the 1 MB page)."""
    return sum(len(name) + _value_size(value) for name, value in item.items())


PAGE_BYTES = 1024 * 1024


def pages_of(items: list[Item], sizes: list[int]) -> list[list[Item]]:
    """Cut `items` into Scan pages the way DynamoDB does: at most 1 MB of (full) items read."""
    pages: list[list[Item]] = []
    page: list[Item] = []
    used = 0
    for item, size in zip(items, sizes, strict=True):
        if page and used + size > PAGE_BYTES:
            pages.append(page)
            page, used = [], 0
        page.append(item)
        used += size
    if page:
        pages.append(page)
    return pages
