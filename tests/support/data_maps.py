"""The example data maps of deploy/, the app's map with extra stores of each kind, and those
stores created (and filled) in the emulated account."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.local.batch_write import batch_write

ROOT = Path(__file__).resolve().parents[2]
APP_MAP = ROOT / "deploy/data-map.yaml"
EVERY_KIND_MAP = ROOT / "deploy/data-map-every-kind.yaml"
AVATARS_BUCKET = "increaser-avatars"

# Two extra stores of each kind, as lines of the app map's `stores`: a table of composite key
# and one read through an index; a list store of named items and one without items; a second
# bucket's folders and a second prefix of the public bucket; items deleted whole and an
# attribute removed.
EXTRA_STORES = {
    "partition_key": (
        "  sessions: {table: sessions, partition_key: userId}\n"
        "  comments: {table: comments, index: byAuthor, partition_key: authorId}\n"
    ),
    "list": (
        "  leaderboards: {table: leaderboards, items: [daily], list: players, list_key: pid}\n"
        "  teams: {table: teams, list: members, list_key: userId}\n"
    ),
    "s3_prefix": (
        f"  avatars: {{bucket: {AVATARS_BUCKET}, s3_prefix: 'avatars/{{id}}/'}}\n"
        "  thumbs: {s3_prefix: 'thumbs/{id}/'}\n"
    ),
    "attribute": (
        "  drafts: {table: drafts, attribute: authorId, action: delete_items}\n"
        "  likes: {table: likes, attribute: likedBy, action: remove_attribute}\n"
    ),
}


def use_app_map_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: str) -> Path:
    """The app's map with `extra` appended, written under `tmp_path` and made the map in force."""
    path = tmp_path / "map.yaml"
    path.write_text(APP_MAP.read_text() + extra)
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    return path


def _key(name: str, kind: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": kind}


def _attributes(*names: str) -> list[dict[str, str]]:
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


def create_table(dynamodb: Any, name: str, *keys: str, **extra: Any) -> None:
    """A table keyed by `keys` (hash, then range), string attributes."""
    schema = [_key(keys[0], "HASH"), *([_key(keys[1], "RANGE")] if len(keys) > 1 else [])]
    attributes = {*keys}
    for index in extra.get("GlobalSecondaryIndexes", []):
        attributes |= {k["AttributeName"] for k in index["KeySchema"]}
    dynamodb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=_attributes(*sorted(attributes)),
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def index(name: str, key: str, projection: str = "KEYS_ONLY") -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [_key(key, "HASH")],
        "Projection": {"ProjectionType": projection},
    }


def create_sessions(dynamodb: Any) -> None:
    """sessions, of composite key (userId, sessionId)."""
    create_table(dynamodb, "sessions", "userId", "sessionId")


def create_comments(dynamodb: Any) -> None:
    """comments, keyed by id, its authors found through the keys-only index byAuthor."""
    create_table(dynamodb, "comments", "id", GlobalSecondaryIndexes=[index("byAuthor", "authorId")])


def create_partition_key_stores(dynamodb: Any) -> None:
    """The tables of the partition_key `EXTRA_STORES`."""
    create_sessions(dynamodb)
    create_comments(dynamodb)


def create_list_stores(dynamodb: Any) -> None:
    """The tables of the list `EXTRA_STORES`: leaderboards by board name, teams of composite
    key."""
    create_table(dynamodb, "leaderboards", "board")
    create_table(dynamodb, "teams", "orgId", "teamId")


def create_attribute_stores(dynamodb: Any) -> None:
    """The tables of the attribute `EXTRA_STORES`: drafts of composite key, likes keyed by id."""
    create_table(dynamodb, "drafts", "space", "draftId")
    create_table(dynamodb, "likes", "id")


def create_avatars_bucket(s3: Any, *, versioned: bool = True) -> None:
    s3.create_bucket(Bucket=AVATARS_BUCKET)
    if versioned:
        version_avatars_bucket(s3)


def version_avatars_bucket(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=AVATARS_BUCKET, VersioningConfiguration={"Status": "Enabled"})


def add_extra_stores(
    clients: AwsClients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    """The `EXTRA_STORES` of `kind` created, empty (the bucket keeping versions), and the app's
    map with them made the map in force."""
    creators = {
        "partition_key": lambda: create_partition_key_stores(clients.dynamodb),
        "list": lambda: create_list_stores(clients.dynamodb),
        "s3_prefix": lambda: create_avatars_bucket(clients.s3),
        "attribute": lambda: create_attribute_stores(clients.dynamodb),
    }
    creators[kind]()
    use_app_map_with(monkeypatch, tmp_path, EXTRA_STORES[kind])


def put_sessions_and_comments(
    dynamodb: Any, owners: Iterable[str], session_ids: Iterable[str] = ("s1",)
) -> None:
    """For each owner, a session of each id in `session_ids` and the comment `c-<owner>`."""
    owners, session_ids = list(owners), list(session_ids)
    sessions = [{"userId": {"S": u}, "sessionId": {"S": i}} for u in owners for i in session_ids]
    batch_write(dynamodb, "sessions", sessions)
    comments = [{"id": {"S": f"c-{u}"}, "authorId": {"S": u}} for u in owners]
    batch_write(dynamodb, "comments", comments)


def create_every_kind_stores(
    clients: AwsClients, *, skip: tuple[str, ...] = (), versioned: bool = False
) -> None:
    """The tables and bucket the every-kind example adds to the app's own, but those in
    `skip`: drafts, teams, sessions (composite key), comments (index byAuthor) and avatars
    (keeping versions if `versioned`)."""
    db = clients.dynamodb
    if "drafts" not in skip:
        create_table(db, "drafts", "id")
    if "teams" not in skip:
        create_table(db, "teams", "id")
    if "sessions" not in skip:
        create_sessions(db)
    if "comments" not in skip:
        create_comments(db)
    if AVATARS_BUCKET not in skip:
        create_avatars_bucket(clients.s3, versioned=versioned)
