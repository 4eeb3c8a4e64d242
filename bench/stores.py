"""The data map's other stores on the benchmark world: what each store costs per deleted user.

The end-to-end world gains the stores of deploy/data-map-every-kind.yaml beyond the app's own
(or those `--stores` names): sessions (a composite key), comments (found through the index
`byAuthor`), drafts (deleted whole), teams (member lists) and avatars (a second bucket). Every
delete candidate has data in each of them, and so do other users, whom no store may cost
anything. Each AWS call is counted with the table or bucket it names, so that the figures are per
store, wherever the call is made (the run's scans, the cascade, its proof).
"""

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.measure import CallRecorder
from bench.ours import PROOF_LABEL
from bench.world import Item, World, put_files
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.local.batch_write import batch_write

EVERY_KIND_MAP = Path(__file__).resolve().parents[1] / "deploy/data-map-every-kind.yaml"
EXTRA_STORES = ("sessions", "comments", "drafts", "teams", "avatars")
AVATARS_BUCKET = "increaser-avatars"
OTHERS_SHARE = 0.1  # of the users who are not delete candidates, those with data in each store
TEAMS = 40


@dataclass
class Seeded:
    """How many things each store holds, for delete candidates and for the others."""

    candidates: dict[str, int] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)


def data_map(workdir: Path, stores: tuple[str, ...]) -> Path:
    """The every-kind example limited to the app's own stores and `stores`, as a file."""
    example = yaml.safe_load(EVERY_KIND_MAP.read_text())
    extra = set(EXTRA_STORES) - set(stores)
    example["stores"] = {k: v for k, v in example["stores"].items() if k not in extra}
    path = workdir / "data-map.yaml"
    path.write_text(yaml.safe_dump(example, sort_keys=False))
    return path


def _create_table(db: Any, name: str, keys: tuple[str, ...], index: str = "") -> None:
    kinds = ("HASH", "RANGE")
    extra: dict[str, Any] = {}
    names = set(keys)
    if index:
        name_of_index, key = index.split(":")
        names.add(key)
        extra["GlobalSecondaryIndexes"] = [
            {
                "IndexName": name_of_index,
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ]
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, kinds, strict=False)],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def seed(clients: AwsClients, world: World, others: list[str], stores: tuple[str, ...]) -> Seeded:
    """Create and fill the named stores: each delete candidate has 3 sessions, 2 comments, a
    draft, a place in 2 teams and an avatar; one in ten other users has as much."""
    rng = random.Random(11)
    db, seeded = clients.dynamodb, Seeded()
    some = rng.sample(others, k=int(len(others) * OTHERS_SHARE))
    people = [(user_id, True) for user_id in world.delete_ids] + [(u, False) for u in some]

    def count(store: str, candidate: bool, n: int) -> None:
        side = seeded.candidates if candidate else seeded.others
        side[store] = side.get(store, 0) + n

    items: dict[str, list[Item]] = {}
    if "sessions" in stores:
        _create_table(db, "sessions", ("userId", "sessionId"))
        for user_id, candidate in people:
            for n in range(3):
                items.setdefault("sessions", []).append(
                    {"userId": {"S": user_id}, "sessionId": {"S": f"s{n}"}, "at": {"N": "1"}}
                )
            count("sessions", candidate, 3)
    if "comments" in stores:
        _create_table(db, "comments", ("id",), index="byAuthor:authorId")
        for user_id, candidate in people:
            for n in range(2):
                items.setdefault("comments", []).append(
                    {"id": {"S": f"c-{user_id}-{n}"}, "authorId": {"S": user_id}}
                )
            count("comments", candidate, 2)
    if "drafts" in stores:
        _create_table(db, "drafts", ("id",))
        for user_id, candidate in people:
            items.setdefault("drafts", []).append(
                {"id": {"S": f"d-{user_id}"}, "authorId": {"S": user_id}, "text": {"S": "..."}}
            )
            count("drafts", candidate, 1)
    if "teams" in stores:
        _create_table(db, "teams", ("id",))
        members: list[list[dict[str, Any]]] = [[] for _ in range(TEAMS)]
        for user_id, candidate in people:
            for team in rng.sample(range(TEAMS), k=2):
                members[team].append({"M": {"userId": {"S": user_id}, "role": {"S": "member"}}})
            count("teams", candidate, 2)
        items["teams"] = [
            {"id": {"S": f"team-{n:03d}"}, "members": {"L": entries}}
            for n, entries in enumerate(members)
        ]
    for table, rows in items.items():
        batch_write(db, table, rows, workers=4)
    if "avatars" in stores:
        clients.s3.create_bucket(Bucket=AVATARS_BUCKET)
        clients.s3.put_bucket_versioning(  # as the public bucket: a restore window needs it
            Bucket=AVATARS_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        put_files(clients, AVATARS_BUCKET, [f"avatars/{user_id}/me.png" for user_id, _ in people])
        for _, candidate in people:
            count("avatars", candidate, 1)
    return seeded


def by_store(recorder: CallRecorder, names: dict[str, str]) -> dict[str, dict[str, int]]:
    """The calls naming each store's table or bucket (`names`: table or bucket -> store), by
    operation, with how many of them the proof of deletion made."""
    found: dict[str, dict[str, int]] = {}
    for call in recorder.calls:
        store = names.get(call.target)
        if store is None:
            continue
        own = found.setdefault(store, {})
        own[call.name] = own.get(call.name, 0) + 1
        if call.label == PROOF_LABEL:
            own["proof"] = own.get("proof", 0) + 1
    return found
