"""The example data maps of deploy/ and the extra stores of the every-kind example, created in
the emulated account."""

from pathlib import Path
from typing import Any

from cleanup_pipeline.aws.clients import AwsClients

ROOT = Path(__file__).resolve().parents[2]
APP_MAP = ROOT / "deploy/data-map.yaml"
EVERY_KIND_MAP = ROOT / "deploy/data-map-every-kind.yaml"
AVATARS_BUCKET = "increaser-avatars"


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


def create_every_kind_stores(clients: AwsClients, *, skip: tuple[str, ...] = ()) -> None:
    """The tables and bucket the every-kind example adds to the app's own, but those in
    `skip`: drafts, teams, sessions (composite key), comments (index byAuthor) and avatars."""
    db = clients.dynamodb
    if "drafts" not in skip:
        create_table(db, "drafts", "id")
    if "teams" not in skip:
        create_table(db, "teams", "id")
    if "sessions" not in skip:
        create_table(db, "sessions", "userId", "sessionId")
    if "comments" not in skip:
        create_table(db, "comments", "id", GlobalSecondaryIndexes=[index("byAuthor", "authorId")])
    if AVATARS_BUCKET not in skip:
        clients.s3.create_bucket(Bucket=AVATARS_BUCKET)
