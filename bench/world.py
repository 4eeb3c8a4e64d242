"""The seeded world on the moto server: users, their files, features, scoreboards, emails.

Seeded with batch writes; S3 files only for delete candidates (a few each). `restore` puts back
everything a run changes (deleted and warned users, their files, features, scoreboards), so
that both pipelines start from the same data.
"""

import random
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.wire_items import EXPECTED, Item, UserFactory, e2e_mix, generate_users
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write

SCOREBOARD_SIZE = 50
SCOREBOARD_DELETED_ENTRIES = 5


@dataclass
class World:
    users: int
    now: int
    profiles: Counter[str]
    expected: Counter[str]
    changed_users: list[Item] = field(default_factory=list)  # delete and notify candidates
    delete_ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    features: list[Item] = field(default_factory=list)
    scoreboards: list[Item] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)  # stored before the run
    delete_addresses: list[str] = field(default_factory=list)

    @property
    def affected_features(self) -> int:
        deleted = set(self.delete_ids)
        return sum(1 for f in self.features if f.get("proposedBy", {}).get("S") in deleted)

    @property
    def scoreboard_entries_of_deleted(self) -> int:
        deleted = set(self.delete_ids)
        return sum(
            1
            for board in self.scoreboards
            for entry in board["users"]["L"]
            if entry["M"]["id"]["S"] in deleted
        )


def build_users(
    users: int, now: int, delete_share: float, notify: int
) -> tuple[list[Item], list[str]]:
    """Full items and their profiles; `notify` active users are turned into notify candidates."""
    generated = list(generate_users(users, now, e2e_mix(delete_share), seed=7, full=True))
    items = [g.item for g in generated]
    profiles = [g.profile for g in generated]
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
    world = World(
        users=len(items),
        now=now,
        profiles=Counter(profiles),
        expected=Counter(EXPECTED[p] for p in profiles),
    )
    batch_write(clients.dynamodb, settings.users_table, items, workers=4)
    by_profile: dict[str, list[Item]] = {}
    for item, profile in zip(items, profiles, strict=True):
        by_profile.setdefault(profile, []).append(item)
    deletes = by_profile.get("delete", [])
    world.delete_ids = [i["id"]["S"] for i in deletes]
    world.delete_addresses = [i["email"]["S"] for i in deletes if "email" in i]
    world.changed_users = deletes + by_profile.get("notify", [])
    active_ids = [i["id"]["S"] for i in by_profile.get("active", [])]

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


def clear_table(client: Any, table: str) -> None:
    """Delete every item of a table keyed by `id` (BatchWriteItem, 25 keys a request)."""
    pages = client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="id")
    keys = [{"DeleteRequest": {"Key": {"id": item["id"]}}} for p in pages for item in p["Items"]]
    for start in range(0, len(keys), 25):
        request: dict[str, Any] = {table: keys[start : start + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")


def state(clients: AwsClients, settings: Settings, world: World) -> dict[str, int]:
    """What is left of the delete candidates' data, and how many of their addresses are not in
    the emails table (all zero after a complete cascade; the original design archives none)."""
    deleted = set(world.delete_ids)
    users_left = 0
    ids = world.delete_ids
    for start in range(0, len(ids), 100):
        keys = [{"id": {"S": i}} for i in ids[start : start + 100]]
        request: dict[str, Any] = {settings.users_table: {"Keys": keys}}
        while request:
            response = clients.dynamodb.batch_get_item(RequestItems=request)
            users_left += len(response["Responses"].get(settings.users_table, []))
            request = response.get("UnprocessedKeys") or {}
    files_left = sum(
        page.get("KeyCount", 0)
        for page in clients.s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.public_bucket_name
        )
    )
    features = clients.dynamodb.get_paginator("scan").paginate(TableName=settings.features_table)
    features_left = sum(
        1
        for page in features
        for item in page["Items"]
        if item.get("proposedBy", {}).get("S") in deleted
    )
    entries_left = 0
    for period in settings.scoreboard_periods:
        board = clients.dynamodb.get_item(
            TableName=settings.scoreboards_table, Key={"id": {"S": period}}
        ).get("Item", {})
        entries_left += sum(
            1 for e in board.get("users", {}).get("L", []) if e["M"]["id"]["S"] in deleted
        )
    pages = clients.dynamodb.get_paginator("scan").paginate(TableName=settings.emails_table)
    stored = {item["id"]["S"] for page in pages for item in page["Items"]}
    return {
        "users": users_left,
        "files": files_left,
        "feature_refs": features_left,
        "scoreboard_entries": entries_left,
        "addresses_not_archived": len(set(world.delete_addresses) - stored),
    }
