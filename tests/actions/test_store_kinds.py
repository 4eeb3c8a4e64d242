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


LISTS = """
stores:
  teams: {table: teams, list: members, list_key: userId}
  boards: {table: boards, items: [daily, gone], list: players, list_key: userId}
"""


def member(user: str, role: str = "member") -> dict[str, Any]:
    return {"M": {"userId": s(user), "role": s(role)}}


def test_a_list_store_is_gathered_removed_proved_and_put_back_once(aws) -> None:
    """Without the run's Scan at hand the store's table is scanned for the users; each entry is
    recorded with its item's key and position; the proof reads the acted items alone; a put
    back done twice (a restore run again) counts its entries once, and an item gone or holding
    the user again is named."""
    clients, settings = aws
    db = clients.dynamodb
    db.create_table(
        TableName="teams",
        KeySchema=[
            {"AttributeName": "orgId", "KeyType": "HASH"},
            {"AttributeName": "teamId", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "orgId", "AttributeType": "S"},
            {"AttributeName": "teamId", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    db.create_table(
        TableName="boards",
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def team(team_id: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        return {"orgId": s("o"), "teamId": s(team_id), "members": {"L": members}}

    batch_write(
        db,
        "teams",
        [
            team("t1", [member("a"), member("u1", "owner"), member("b"), member("u1")]),
            team("t2", [member("u1")]),
            team("t3", [member("c")]),
        ],
    )
    db.put_item(TableName="boards", Item={"name": s("daily"), "players": {"L": [member("u1")]}})
    stores = {store.name: store for store in parse_data_map(LISTS, settings, {}).stores}
    teams, boards = stores["teams"], stores["boards"]
    kind = kind_of(teams)
    proof = ProofContext(db, clients.s3, settings.users_table, None, False)  # type: ignore[arg-type]

    found = kind.gather(clients, teams, ["u1", "u2"])
    t1 = {"orgId": s("o"), "teamId": s("t1")}
    assert found["u2"] == []
    assert sorted((r["key"]["teamId"]["S"], r["position"]) for r in found["u1"]) == [
        ("t1", 1),
        ("t1", 3),
        ("t2", 0),
    ]
    assert {"key": t1, "position": 1, "entry": member("u1", "owner")} in found["u1"]
    acted = {"u1": kind.acted_on(teams, found["u1"])}
    assert len(acted["u1"]) == 2
    assert kind.left(proof, teams, ["u1"], acted) == {"u1": 3}

    assert kind.remove(clients, teams, found) == {}
    assert kind.left(proof, teams, ["u1"], acted) == {}
    team_1 = db.get_item(TableName="teams", Key=t1)["Item"]["members"]["L"]
    assert team_1 == [member("a"), member("b")]

    db.delete_item(TableName="teams", Key={"orgId": s("o"), "teamId": s("t2")})
    back = kind.put_back(clients, teams, "u1", found["u1"])
    assert back.restored == 2 and len(back.skipped) == 1 and "no longer exists" in back.skipped[0]
    again = kind.put_back(clients, teams, "u1", found["u1"])
    assert again.restored == 2
    team_1 = db.get_item(TableName="teams", Key=t1)["Item"]["members"]["L"]
    assert team_1 == [member("a"), member("u1", "owner"), member("b"), member("u1")]

    # Named items keyed by `name`, one of them absent: read by that key, skipped when gone.
    on_board = kind.gather(clients, boards, ["u1"])
    assert on_board["u1"] == [{"key": {"name": s("daily")}, "position": 0, "entry": member("u1")}]
    assert kind.left(proof, boards, ["u1"], {}) == {"u1": 1}
    assert kind.remove(clients, boards, on_board) == {}
    assert kind.left(proof, boards, ["u1"], {}) == {}
    db.put_item(
        TableName="boards", Item={"name": s("daily"), "players": {"L": [member("u1", "x")]}}
    )
    replaced = kind.put_back(clients, boards, "u1", on_board["u1"])
    assert replaced.restored == 0 and "already holds an entry of the user" in replaced.skipped[0]
