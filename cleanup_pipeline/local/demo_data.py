"""Realistic demo data for the local emulator: users covering every decision and reason, their
files, features they proposed, scoreboards and the emails table."""

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write

# Share of users per profile; invalid stays under the 1% guard, deletions under 5%,
# warnings under 20% of valid users.
PROFILES: dict[str, float] = {
    "active": 0.52,
    "notify": 0.14,
    "waiting": 0.10,
    "delete": 0.04,
    "came_back": 0.04,
    "trial": 0.05,
    "lifetime": 0.03,
    "subscriber": 0.05,
    "cancelled_subscription": 0.025,
    "invalid": 0.005,
}
BIG_FOLDER_OBJECTS = 1_050
FIRST_NAMES = ("ana", "ben", "chloe", "dmitri", "elif", "femi", "grace", "hiro", "ines", "jon")


@dataclass(frozen=True)
class DemoSummary:
    users: int
    files: int
    features: int
    profiles: dict[str, int]


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _user(i: int, profile: str, now: int, rng: random.Random) -> dict[str, Any]:
    name = rng.choice(FIRST_NAMES)
    item: dict[str, Any] = {
        "id": {"S": f"user-{i:06d}"},
        "email": {"S": f"{name}.{i}@example.com"},
        "name": {"S": name.title()},
    }
    day = lambda lo, hi: now - rng.randint(lo * 24, hi * 24) * DAY_MS // 24  # noqa: E731
    if profile == "active":
        item["lastVisitAt"] = _n(day(0, 59))
    elif profile == "notify":
        item["lastVisitAt"] = _n(day(61, 400))
    elif profile in ("waiting", "delete", "came_back"):
        sent = day(1, 29) if profile == "waiting" else day(31, 80)
        item["accountDeletionEmailSentAt"] = _n(sent)
        last = sent - rng.randint(61, 200) * DAY_MS
        item["lastVisitAt"] = _n(sent + DAY_MS if profile == "came_back" else last)
    elif profile == "trial":
        item["lastVisitAt"] = _n(day(61, 120))
        item["freeTrialEnd"] = _n(now + rng.randint(1, 14) * DAY_MS)
    elif profile == "lifetime":
        item["lastVisitAt"] = _n(day(61, 400))
        item["lifeTimeDeal"] = {"BOOL": True}
    elif profile in ("subscriber", "cancelled_subscription"):
        item["lastVisitAt"] = _n(day(61, 300))
        ends = now + 30 * DAY_MS if profile == "subscriber" else now - 40 * DAY_MS
        item["subscription"] = {
            "M": {
                "id": {"S": f"sub-{i}"},
                "planId": {"S": "monthly"},
                "status": {"S": "active" if profile == "subscriber" else "canceled"},
                "endsAt": _n(ends),
            }
        }
    elif profile == "invalid":
        item["lastVisitAt"] = rng.choice([_n(day(61, 90) // 1000), {"S": "yesterday"}])
    return item


def demo_users(count: int, now: int, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    names, weights = list(PROFILES), list(PROFILES.values())
    for i in range(count):
        profile = rng.choices(names, weights)[0]
        yield profile, _user(i, profile, now, rng)


def seed_demo(
    clients: AwsClients,
    settings: Settings,
    users: int,
    now: int,
    big_folder: int = BIG_FOLDER_OBJECTS,
) -> DemoSummary:
    """Write `users` demo users and everything that refers to them; one deleted user gets a
    folder of `big_folder` extra files."""
    rng = random.Random(11)
    seeded = list(demo_users(users, now))
    batch_write(clients.dynamodb, settings.users_table, [item for _, item in seeded])
    ids = [item["id"]["S"] for _, item in seeded]
    deletes = [item["id"]["S"] for profile, item in seeded if profile == "delete"]

    keys = [
        f"{settings.user_prefix(user_id)}{kind}-{n}.png"
        for user_id in rng.sample(ids, k=min(len(ids), max(1, users // 4)))
        for kind in ("avatar", "focus")
        for n in range(rng.randint(0, 2))
    ]
    if deletes:  # by default more than 1,000 files, to show pagination
        keys += [f"{settings.user_prefix(deletes[0])}notes/{n:04d}.md" for n in range(big_folder)]
    bucket = settings.public_bucket_name
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(lambda key: clients.s3.put_object(Bucket=bucket, Key=key, Body=b"demo"), keys)
        )

    features = [
        {"id": {"S": f"feature-{n:04d}"}, "name": {"S": f"Idea {n}"}}
        | ({"proposedBy": {"S": rng.choice(deletes + ids[:200])}} if deletes and n % 3 else {})
        for n in range(max(10, users // 20))
    ]
    batch_write(clients.dynamodb, settings.features_table, features)
    for period in settings.scoreboard_periods:
        entries = [
            {"M": {"id": {"S": user_id}, "dailyAverageStartWorkAt": _n(rng.randint(300, 720))}}
            for user_id in rng.sample(ids, k=min(len(ids), 40)) + deletes[:5]
        ]
        batch_write(
            clients.dynamodb,
            settings.scoreboards_table,
            [{"id": {"S": period}, "users": {"L": entries}, "syncedAt": _n(now)}],
        )
    batch_write(
        clients.dynamodb,
        settings.emails_table,
        [{"id": item["email"]} for _, item in seeded[: users // 2] if "email" in item],
    )
    profiles: dict[str, int] = {}
    for profile, _ in seeded:
        profiles[profile] = profiles.get(profile, 0) + 1
    return DemoSummary(users=users, files=len(keys), features=len(features), profiles=profiles)
