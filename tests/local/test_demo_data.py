"""The demo world: with a data map declaring `sessions` (the quick start's), each user's sessions
in a table keyed by (userId, sessionId), beside the app's own data, which stays as it was."""

from typing import Any

import pytest

from cleanup_pipeline.core.data_map import (
    DELETE_ITEMS,
    MAP_VARIABLE,
    PARTITION_KEY,
    builtin_map,
    load_data_map,
    parse_data_map,
)
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import (
    DEMO_MAP,
    demo_erase_requests,
    demo_users,
    seed_demo,
    sessions_store,
)
from tests.support.aws_state import scan_all
from tests.support.data_maps import APP_MAP
from tests.support.items import now_ms

USERS = 60


def everything(clients: Any, settings: Any) -> dict[str, Any]:
    """The app's own demo data: users, files, features, scoreboards and emails."""
    tables = (settings.users_table, settings.features_table, settings.scoreboards_table)
    found: dict[str, Any] = {t: scan_all(clients.dynamodb, t) for t in tables}
    found["emails"] = sorted(scan_all(clients.dynamodb, settings.emails_table))
    pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=settings.public_bucket_name)
    found["files"] = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    return found


def test_the_demo_map_gets_each_user_sessions_and_leaves_the_rest_as_it_was(aws) -> None:
    clients, settings = aws
    store = sessions_store(load_data_map(settings, {MAP_VARIABLE: str(DEMO_MAP)}))
    assert store is not None and (store.table, store.key) == ("sessions", "userId")
    now = now_ms()

    demo = seed_demo(clients, settings, USERS, now, big_folder=3, sessions=store)

    described = clients.dynamodb.describe_table(TableName="sessions")["Table"]
    assert described["KeySchema"] == [
        {"AttributeName": "userId", "KeyType": "HASH"},
        {"AttributeName": "sessionId", "KeyType": "RANGE"},
    ]
    items = clients.dynamodb.scan(TableName="sessions")["Items"]
    per_user: dict[str, int] = {}
    for item in items:
        per_user[item["userId"]["S"]] = per_user.get(item["userId"]["S"], 0) + 1
    assert sorted(per_user) == sorted(scan_all(clients.dynamodb, settings.users_table))
    assert set(per_user.values()) <= {1, 2, 3}
    assert demo.sessions == len(items)
    with_sessions = everything(clients, settings)

    clients.dynamodb.delete_table(TableName="sessions")
    for table in (settings.users_table, settings.features_table, settings.scoreboards_table):
        for key in scan_all(clients.dynamodb, table):
            clients.dynamodb.delete_item(TableName=table, Key={"id": {"S": key}})
    without = seed_demo(clients, settings, USERS, now, big_folder=3)

    assert without.sessions == 0 and "sessions" not in clients.dynamodb.list_tables()["TableNames"]
    assert everything(clients, settings) == with_sessions
    assert (without.users, without.files, without.features, without.profiles) == (
        demo.users,
        demo.files,
        demo.features,
        demo.profiles,
    )


@pytest.mark.parametrize(
    "extra",
    [
        "",
        "  sessions: {table: sessions, index: byUser, partition_key: userId}\n",
        "  sessions: {table: sessions, attribute: userId, action: delete_items}\n",
    ],
    ids=["no sessions store", "through an index", "another kind"],
)
def test_a_map_without_a_sessions_store_the_demo_can_create_gets_no_sessions(extra: str) -> None:
    settings = load_settings()
    data_map = parse_data_map(APP_MAP.read_text() + extra, settings, {}, "test map")
    assert sessions_store(data_map) is None


def test_the_demo_map_is_the_builtin_map_plus_sessions_and_ships_in_deploy() -> None:
    settings = load_settings()
    demo = load_data_map(settings, {MAP_VARIABLE: str(DEMO_MAP)})
    assert demo.stores[:-1] == builtin_map(settings).stores
    assert [(s.name, s.kind, s.action) for s in demo.stores[-1:]] == [
        ("sessions", PARTITION_KEY, DELETE_ITEMS)
    ]
    assert (APP_MAP.parent / "data-map-demo.yaml").read_text() == DEMO_MAP.read_text()


def test_the_demos_erase_requests_name_only_users_it_seeded_and_one_id_it_did_not() -> None:
    """Without a subscriber among few users, there is no subscriber's request."""
    few = list(demo_users(5, 0))
    assert [p for p, _ in few].count("subscriber") == 0
    assert demo_erase_requests(few) == [("user-000000", 3), ("user-000005", 1)]
    many = list(demo_users(300, 0))
    profiles = {item["id"]["S"]: p for p, item in many}
    asked = demo_erase_requests(many)
    assert [profiles.get(user) for user, _ in asked] == ["active", "subscriber", None]
