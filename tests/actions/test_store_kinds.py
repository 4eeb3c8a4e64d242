"""The functions of a `partition_key` store against moto: every item of the user found (a table
keyed by the user with a sort key, and a table reached through a GSI that projects only keys),
recorded whole, deleted by the table's full key, proved gone, and put back only where nothing
took its place."""

from typing import Any

import pytest

from cleanup_pipeline.actions.store_kinds import PartitionKeyKind, ProofContext, kind_of
from cleanup_pipeline.core.data_map import parse_data_map
from cleanup_pipeline.local.batch_write import batch_write

MAP = """
stores:
  sessions: {table: sessions, partition_key: userId}
  comments: {table: comments, index: byAuthor, partition_key: authorId}
"""


def s(value: str) -> dict[str, str]:
    return {"S": value}


def session(user: str, started: str) -> dict[str, Any]:
    return {"userId": s(user), "startedAt": s(started), "device": s("phone")}


def comment(comment_id: str, author: str) -> dict[str, Any]:
    return {"id": s(comment_id), "authorId": s(author), "text": s(f"by {author}")}


@pytest.fixture
def world(aws):
    clients, settings = aws
    dynamodb = clients.dynamodb
    dynamodb.create_table(
        TableName="sessions",
        KeySchema=[
            {"AttributeName": "userId", "KeyType": "HASH"},
            {"AttributeName": "startedAt", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "userId", "AttributeType": "S"},
            {"AttributeName": "startedAt", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="comments",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "authorId", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byAuthor",
                "KeySchema": [{"AttributeName": "authorId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # More sessions than one BatchWriteItem takes, and a neighbour whose id extends the user's.
    batch_write(dynamodb, "sessions", [session("u1", f"{n:03d}") for n in range(30)])
    batch_write(dynamodb, "sessions", [session("u1x", "000"), session("u2", "000")])
    batch_write(
        dynamodb, "comments", [comment("c1", "u1"), comment("c2", "u1"), comment("c3", "u2")]
    )
    stores = {store.name: store for store in parse_data_map(MAP, settings, {}).stores}
    proof = ProofContext(dynamodb, clients.s3, settings.users_table, None, False)  # type: ignore[arg-type]
    return clients, stores, proof


def all_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return dynamodb.scan(TableName=table)["Items"]


def test_a_partition_key_store_is_found_removed_proved_and_put_back(world) -> None:
    clients, stores, proof = world
    kind = kind_of(stores["sessions"])
    assert isinstance(kind, PartitionKeyKind)
    found = kind.gather(clients, stores["sessions"], ["u1", "u3"])
    assert found["u3"] == []
    assert sorted(item["startedAt"]["S"] for item in found["u1"]) == [f"{n:03d}" for n in range(30)]
    assert found["u1"][0] == session("u1", found["u1"][0]["startedAt"]["S"])  # whole
    assert kind.left(proof, stores["sessions"], ["u1"], {}) == {"u1": 30}

    assert kind.remove(clients, stores["sessions"], found) == {}
    left = sorted(i["userId"]["S"] for i in all_items(clients.dynamodb, "sessions"))
    assert left == ["u1x", "u2"]
    assert kind.left(proof, stores["sessions"], ["u1", "u2"], {}) == {"u2": 1}

    # One session came back meanwhile with other content: it is kept, the others return.
    taken = {**session("u1", "005"), "device": s("laptop")}
    clients.dynamodb.put_item(TableName="sessions", Item=taken)
    back = kind.put_back(clients, stores["sessions"], "u1", found["u1"])
    assert back.restored == 29 and len(back.skipped) == 1
    assert "another item took its place" in back.skipped[0]
    again = kind.put_back(clients, stores["sessions"], "u1", found["u1"])  # idempotent
    assert again.restored == 29
    key = {"userId": s("u1"), "startedAt": s("005")}
    assert clients.dynamodb.get_item(TableName="sessions", Key=key)["Item"] == taken


def test_a_store_reached_through_a_keys_only_index_is_recorded_whole_and_deleted_by_table_key(
    world,
) -> None:
    clients, stores, proof = world
    comments = stores["comments"]
    kind = kind_of(comments)
    found = kind.gather(clients, comments, ["u1"])
    assert sorted(found["u1"], key=lambda i: i["id"]["S"]) == [
        comment("c1", "u1"),
        comment("c2", "u1"),
    ]
    assert kind.left(proof, comments, ["u1", "u2"], {}) == {"u1": 2, "u2": 1}
    assert kind.remove(clients, comments, found) == {}
    assert [i["id"]["S"] for i in all_items(clients.dynamodb, "comments")] == ["c3"]
    assert kind.left(proof, comments, ["u1"], {}) == {}
    assert kind.put_back(clients, comments, "u1", found["u1"]).restored == 2
    assert len(all_items(clients.dynamodb, "comments")) == 3
