"""The benchmark's data: synthetic users in DynamoDB wire format, and the world seeded from them.

Every profile of user maps to one outcome of the decision rules (`EXPECTED`), so that the
benchmark checks the job decided what the data says. The world on the emulator is seeded with
batch writes, with S3 files only for delete candidates (a few each); `restore` puts back
everything a run changes, so that both pipelines start from the same data.
"""

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write

Item = dict[str, dict[str, Any]]

# Each profile's share of users in a large production table (mostly active, a few percent at
# each stage of the warn-then-delete cycle, exemptions, a sprinkle of malformed records), and
# the decision the rules take for it.
PROFILES: dict[str, tuple[float, str]] = {
    "active": (0.50, "active"),
    "notify": (0.12, "notify"),
    "notify_again": (0.02, "notify"),
    "waiting": (0.08, "waiting"),
    "delete": (0.04, "delete"),
    "came_back": (0.04, "active"),
    "trial": (0.05, "exempt"),
    "lifetime": (0.03, "exempt"),
    "subscriber": (0.06, "exempt"),
    "cancelled": (0.035, "active"),
    "odd_but_valid": (0.02, "active"),
    "invalid": (0.005, "invalid"),
}
REALISTIC_MIX = {profile: share for profile, (share, _) in PROFILES.items()}
EXPECTED = {profile: decision for profile, (_, decision) in PROFILES.items()}

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


def generate_users(
    count: int, now: int, mix: dict[str, float], seed: int = 7, full: bool = False
) -> tuple[list[Item], list[str]]:
    """`count` users and their profiles, drawn from `mix` (the same for a given seed)."""
    factory = UserFactory(now, seed, full)
    profiles = random.Random(seed + 1).choices(list(mix), list(mix.values()), k=count)
    return [factory.build(i, profile) for i, profile in enumerate(profiles)], profiles


SCOREBOARD_SIZE = 50
SCOREBOARD_DELETED_ENTRIES = 5


@dataclass
class World:
    now: int
    expected: Counter[str]  # decisions the seeded data calls for
    changed_users: list[Item] = field(default_factory=list)  # delete and notify candidates
    delete_ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    features: list[Item] = field(default_factory=list)
    scoreboards: list[Item] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)  # stored before the run
    delete_addresses: list[str] = field(default_factory=list)
    active_ids: list[str] = field(default_factory=list)  # users no rule touches

    @property
    def affected_features(self) -> int:
        deleted = set(self.delete_ids)
        return sum(1 for f in self.features if f.get("proposedBy", {}).get("S") in deleted)


def build_users(
    users: int, now: int, delete_share: float, notify: int
) -> tuple[list[Item], list[str]]:
    """Full items and their profiles; `notify` active users are turned into notify candidates."""
    items, profiles = generate_users(users, now, e2e_mix(delete_share), seed=7, full=True)
    active = [i for i, p in enumerate(profiles) if p == "active"]
    factory = UserFactory(now, seed=99, full=True)
    step = max(1, len(active) // max(1, notify))
    for i in active[::step][:notify]:
        items[i] = factory.build(i, "notify")
        profiles[i] = "notify"
    return items, profiles


def put_files(clients: AwsClients, bucket: str, keys: Iterable[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: clients.s3.put_object(Bucket=bucket, Key=k, Body=b"x" * 64), keys))


def seed(
    clients: AwsClients,
    settings: Settings,
    items: list[Item],
    profiles: list[str],
    features: int,
    now: int,
    addresses_stored: bool = False,
) -> World:
    """Seed the world; the delete candidates' addresses are in the emails table only with
    `addresses_stored` (by default the cascade has to write every one of them)."""
    rng = random.Random(5)
    world = World(now, Counter(EXPECTED[p] for p in profiles))
    batch_write(clients.dynamodb, settings.users_table, items, workers=4)
    by_profile: dict[str, list[Item]] = {}
    for item, profile in zip(items, profiles, strict=True):
        by_profile.setdefault(profile, []).append(item)
    deletes = by_profile.get("delete", [])
    world.delete_ids = [i["id"]["S"] for i in deletes]
    world.delete_addresses = [i["email"]["S"] for i in deletes if "email" in i]
    world.changed_users = deletes + by_profile.get("notify", [])
    active_ids = world.active_ids = [i["id"]["S"] for i in by_profile.get("active", [])]

    world.files = [
        f"{settings.user_prefix(user_id)}{name}"
        for user_id in world.delete_ids
        for name in rng.sample(
            ["avatar.png", "focus-1.png", "focus-2.png", "notes.md"], k=rng.randint(1, 4)
        )
    ]
    put_files(clients, settings.public_bucket_name, world.files)

    if addresses_stored:  # as when the app stores every address at sign-up
        world.emails = [i["email"]["S"] for i in deletes]
        batch_write(
            clients.dynamodb,
            settings.emails_table,
            [{"id": {"S": e}} for e in world.emails],
            workers=4,
        )

    for n in range(features):
        feature: Item = {"id": {"S": f"feature-{n:05d}"}, "name": {"S": f"Idea {n}"}}
        if n % 3 == 0 and world.delete_ids:
            feature["proposedBy"] = {"S": rng.choice(world.delete_ids)}
        elif n % 3 == 1 and active_ids:
            feature["proposedBy"] = {"S": rng.choice(active_ids)}
        world.features.append(feature)
    batch_write(clients.dynamodb, settings.features_table, world.features, workers=4)

    for period in settings.scoreboard_periods:
        ids = rng.sample(active_ids, k=min(len(active_ids), SCOREBOARD_SIZE))
        ids += rng.sample(
            world.delete_ids, k=min(len(world.delete_ids), SCOREBOARD_DELETED_ENTRIES)
        )
        rng.shuffle(ids)
        entries = [
            {"M": {"id": {"S": i}, "dailyAverageStartWorkAt": {"N": str(rng.randint(300, 720))}}}
            for i in ids
        ]
        world.scoreboards.append(
            {"id": {"S": period}, "users": {"L": entries}, "syncedAt": {"N": str(now)}}
        )
    batch_write(clients.dynamodb, settings.scoreboards_table, world.scoreboards, workers=4)
    return world


def restore(clients: AwsClients, settings: Settings, world: World) -> None:
    """Put back every item and file a run may have changed or deleted, and empty the emails
    table again unless the world stores the addresses."""
    batch_write(clients.dynamodb, settings.users_table, world.changed_users, workers=4)
    batch_write(clients.dynamodb, settings.features_table, world.features, workers=4)
    batch_write(clients.dynamodb, settings.scoreboards_table, world.scoreboards, workers=4)
    put_files(clients, settings.public_bucket_name, world.files)
    if not world.emails:
        clear_table(clients.dynamodb, settings.emails_table)


def _items(client: Any, table: str, **params: Any) -> Iterator[Item]:
    for page in client.get_paginator("scan").paginate(TableName=table, **params):
        yield from page["Items"]


def clear_table(client: Any, table: str) -> None:
    """Delete every item of a table keyed by `id`."""
    keys = [{"DeleteRequest": {"Key": {"id": i["id"]}}} for i in _items(client, table)]
    for start in range(0, len(keys), 25):
        request: dict[str, Any] = {table: keys[start : start + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")


def state(clients: AwsClients, settings: Settings, world: World) -> dict[str, int]:
    """What is left of the delete candidates' data, and how many of their addresses are not in
    the emails table (all zero after a complete cascade; the original design archives none)."""
    db, deleted = clients.dynamodb, set(world.delete_ids)
    users = sum(
        "Item"
        in db.get_item(
            TableName=settings.users_table, Key={"id": {"S": i}}, ProjectionExpression="id"
        )
        for i in world.delete_ids
    )
    listing = clients.s3.get_paginator("list_objects_v2")
    files = sum(p.get("KeyCount", 0) for p in listing.paginate(Bucket=settings.public_bucket_name))
    features = _items(db, settings.features_table)
    boards = _items(db, settings.scoreboards_table)
    stored = {i["id"]["S"] for i in _items(db, settings.emails_table)}
    return {
        "users": users,
        "files": files,
        "feature_refs": sum(f.get("proposedBy", {}).get("S") in deleted for f in features),
        "scoreboard_entries": sum(
            e["M"]["id"]["S"] in deleted for b in boards for e in b.get("users", {}).get("L", [])
        ),
        "addresses_not_archived": len(set(world.delete_addresses) - stored),
    }
