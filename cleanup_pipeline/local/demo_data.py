"""Realistic demo data for the local emulator: users covering every decision and reason, their
files, features they proposed, scoreboards and the emails table; and, when the data map in force
declares it, a store the built-in map does not know: the sessions of each user, in a table keyed
by (userId, sessionId); and, for the quick start, a few erase requests."""

import random
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.aws.requests_table import new_request_id, open_request
from cleanup_pipeline.core.data_map import MAP_VARIABLE, PARTITION_KEY, DataMap, Store
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.requests import RequestKind, new_request
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
# The quick start's data map: the app's own stores plus the sessions (deploy/ links to it).
DEMO_MAP = Path(__file__).with_name("data-map-demo.yaml")
SESSIONS_STORE = "sessions"
SESSION_SORT_KEY = "sessionId"
DEVICES = ("web", "ios", "android")
# The quick start's erase requests, as (profile of the user who asks, days since it arrived):
# a recent visitor, since an erasure has nothing to do with inactivity; a subscriber, whose
# request stays open (`active subscription`) and is due soon; and, under `None`, an id no user
# has, which the run closes with `no such user`.
DEMO_REQUESTS: tuple[tuple[str | None, int], ...] = (("active", 3), ("subscriber", 28), (None, 1))


@dataclass(frozen=True)
class DemoSummary:
    users: int
    files: int
    features: int
    profiles: dict[str, int]
    sessions: int = 0
    requests: int = 0


def with_demo_map(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with `CLEANUP_DATA_MAP` naming the demo's map, unless it is set already (a blank
    value keeps the built-in map)."""
    return {MAP_VARIABLE: str(DEMO_MAP), **env}


def sessions_store(data_map: DataMap) -> Store | None:
    """The map's `sessions` store when the demo can fill it: items of a table keyed by the
    user id (no index), which the demo creates with `sessionId` as its sort key."""
    store = next((s for s in data_map.stores if s.name == SESSIONS_STORE), None)
    if store is None or store.kind != PARTITION_KEY or store.index:
        return None
    return store


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


def demo_sessions(user_ids: list[str], key: str, now: int, seed: int = 13) -> list[dict[str, Any]]:
    """One to three sessions per user; `key` is the attribute holding the user id."""
    rng = random.Random(seed)
    sessions: list[dict[str, Any]] = []
    for user_id in user_ids:
        for _ in range(rng.randint(1, 3)):
            sessions.append(
                {
                    key: {"S": user_id},
                    SESSION_SORT_KEY: {"S": f"{rng.getrandbits(64):016x}"},
                    "device": {"S": rng.choice(DEVICES)},
                    "startedAt": _n(now - rng.randint(1, 400) * DAY_MS),
                }
            )
    return sessions


def _create_sessions_table(dynamodb: Any, store: Store) -> None:
    if store.table in dynamodb.list_tables()["TableNames"]:
        return
    dynamodb.create_table(
        TableName=store.table,
        KeySchema=[
            {"AttributeName": store.key, "KeyType": "HASH"},
            {"AttributeName": SESSION_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": store.key, "AttributeType": "S"},
            {"AttributeName": SESSION_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def demo_erase_requests(seeded: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, int]]:
    """(user id, days since it arrived) of each erase request of `DEMO_REQUESTS` among the
    `seeded` (profile, item) pairs: the first user of each profile, when there is one."""
    first: dict[str, str] = {}
    for profile, item in seeded:
        first.setdefault(profile, item["id"]["S"])
    unknown = f"user-{len(seeded):06d}"  # the next id: no demo user has it
    return [
        (unknown if profile is None else first[profile], days)
        for profile, days in DEMO_REQUESTS
        if profile is None or profile in first
    ]


def _open_erase_requests(
    clients: AwsClients, settings: Settings, asked: list[tuple[str, int]], now: int
) -> int:
    table = settings.requests_table
    if table is None:
        return 0
    for n, (user_id, days) in enumerate(asked):
        request = new_request(
            new_request_id(),
            user_id,
            RequestKind.ERASE,
            now=now,
            deadline_days=settings.request_deadline_days,
            received=str(now - days * DAY_MS),
            ref=f"demo ticket {101 + n}",
        )
        open_request(clients.dynamodb, table, request)  # a user's open one is kept, not doubled
    return len(asked)


def seed_demo(
    clients: AwsClients,
    settings: Settings,
    users: int,
    now: int,
    big_folder: int = BIG_FOLDER_OBJECTS,
    sessions: Store | None = None,
    erase_requests: bool = False,
) -> DemoSummary:
    """Write `users` demo users and everything that refers to them; one deleted user gets a
    folder of `big_folder` extra files. With the `sessions` store (see `sessions_store`), its
    table is created if missing and filled with the users' sessions. With `erase_requests` and
    a requests table, the requests of `DEMO_REQUESTS` are opened in it."""
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
    session_items: list[dict[str, Any]] = []
    if sessions is not None:
        _create_sessions_table(clients.dynamodb, sessions)
        session_items = demo_sessions(ids, sessions.key, now)
        batch_write(clients.dynamodb, sessions.table, session_items, workers=4)
    requests = (
        _open_erase_requests(clients, settings, demo_erase_requests(seeded), now)
        if erase_requests
        else 0
    )
    profiles: dict[str, int] = {}
    for profile, _ in seeded:
        profiles[profile] = profiles.get(profile, 0) + 1
    return DemoSummary(
        users=users,
        files=len(keys),
        features=len(features),
        profiles=profiles,
        sessions=len(session_items),
        requests=requests,
    )
