"""The data map's stores against moto: every table, index and bucket checked before anything
runs, every problem named in one error; the account's tables and buckets listed."""

import pytest

from cleanup_pipeline.aws.stores import (
    account_buckets,
    account_tables,
    checked_data_map,
    require_stores,
    store_problems,
)
from cleanup_pipeline.core.data_map import MAP_VARIABLE, DataMapError, builtin_map, load_data_map
from tests.support.aws_calls import record_params
from tests.support.data_maps import (
    APP_MAP,
    AVATARS_BUCKET,
    EVERY_KIND_MAP,
    create_every_kind_stores,
    create_table,
    index,
)


@pytest.fixture
def every_kind(monkeypatch):
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))


def test_the_app_and_every_kind_example_pass_when_everything_exists(aws, every_kind) -> None:
    clients, settings = aws
    assert store_problems(clients.dynamodb, clients.s3, settings, builtin_map(settings)) == []
    create_every_kind_stores(clients)
    data_map = load_data_map(settings)
    require_stores(clients.dynamodb, clients.s3, settings, data_map)
    assert [store.name for store in data_map.stores][-2:] == ["sessions", "comments"]


def test_each_table_is_described_once(aws, every_kind) -> None:
    clients, settings = aws
    create_every_kind_stores(clients)
    described = record_params(clients.dynamodb, "DescribeTable")
    require_stores(clients.dynamodb, clients.s3, settings, load_data_map(settings))
    names = [params["TableName"] for params in described]
    assert sorted(names) == sorted(
        {"users", "emails", "holds", "features", "drafts", "scoreboards", "teams"}
        | {"sessions", "comments"}
    )


def test_every_missing_or_unfitting_store_is_named_in_one_error(aws, every_kind) -> None:
    clients, settings = aws
    create_every_kind_stores(clients, skip=("sessions", "comments", "teams", AVATARS_BUCKET))
    # Sessions keyed by their own id, comments with an index keyed by another attribute.
    create_table(clients.dynamodb, "sessions", "sessionId")
    create_table(
        clients.dynamodb, "comments", "id", GlobalSecondaryIndexes=[index("byAuthor", "postId")]
    )
    clients.dynamodb.delete_table(TableName=settings.emails_table)
    with pytest.raises(DataMapError) as raised:
        require_stores(clients.dynamodb, clients.s3, settings, load_data_map(settings))
    assert raised.value.problems == [
        "EMAILS_TABLE_NAME: table 'emails' does not exist",
        f"stores.avatars.bucket: bucket {AVATARS_BUCKET!r} does not exist",
        "stores.teams.table: table 'teams' does not exist",
        "stores.sessions.partition_key: table 'sessions' is keyed by 'sessionId', not 'userId': "
        "give the index whose key it is",
        "stores.comments.index: index 'byAuthor' of 'comments' is keyed by 'postId', not the "
        "store's partition_key 'authorId'",
    ]
    assert str(raised.value).startswith(f"{MAP_VARIABLE} {EVERY_KIND_MAP}: ")


def test_a_missing_index_and_a_missing_users_table_are_named(aws, every_kind) -> None:
    clients, settings = aws
    create_every_kind_stores(clients, skip=("comments",))
    create_table(clients.dynamodb, "comments", "id")
    clients.dynamodb.delete_table(TableName=settings.users_table)
    with pytest.raises(DataMapError) as raised:
        require_stores(clients.dynamodb, clients.s3, settings, load_data_map(settings))
    assert raised.value.problems == [
        "USERS_TABLE_NAME: table 'users' does not exist",
        "stores.comments.index: table 'comments' has no index 'byAuthor'",
    ]


def test_a_bad_map_is_refused_before_any_aws_call(aws, monkeypatch, tmp_path) -> None:
    clients, settings = aws
    path = tmp_path / "map.yaml"
    path.write_text("stores: {sessions: {table: sessions, partition_key: userId, colour: red}}")
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    described = record_params(clients.dynamodb, "DescribeTable")
    with pytest.raises(DataMapError, match=r"stores\.sessions\.colour: unknown field"):
        checked_data_map(clients, settings)
    assert described == []


def test_the_accounts_tables_are_listed_page_by_page_and_its_buckets(aws) -> None:
    clients, _ = aws
    for number in range(105):  # ListTables answers at most 100 names a page
        create_table(clients.dynamodb, f"app-{number:03d}", "id")
    pages = record_params(clients.dynamodb, "ListTables")
    tables = account_tables(clients.dynamodb)
    assert len(pages) == 2
    assert {f"app-{n:03d}" for n in range(105)} | {"users", "emails"} <= set(tables)
    clients.s3.create_bucket(Bucket="app-media")
    assert sorted(account_buckets(clients.s3)) == ["app-media", "increaser-public"]


def test_a_map_with_stores_the_cascade_does_not_act_on_is_refused_with_its_existence_problems(
    aws, every_kind
) -> None:
    """Until the cascade covers their kind, a store beyond the app's own would be left behind
    by every deletion: the run is refused, naming each, beside any missing table. Stores of
    kind partition_key and list are covered."""
    clients, settings = aws
    create_every_kind_stores(clients, skip=("teams",))
    with pytest.raises(DataMapError) as raised:
        checked_data_map(clients, settings)
    extra = ["avatars", "drafts"]
    assert raised.value.problems == [
        "stores.teams.table: table 'teams' does not exist",
        *(
            f"stores.{name}: not acted on by this version's cascade, which deletes only the "
            "app's own stores (files, features, scoreboards) and stores of kind "
            "partition_key, list; a deletion would leave its data behind"
            for name in extra
        ),
    ]


def test_the_app_map_passes_every_check(aws, monkeypatch) -> None:
    clients, settings = aws
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    assert checked_data_map(clients, settings).stores == builtin_map(settings).stores


def test_named_items_of_a_table_with_a_composite_key_are_refused(
    aws, monkeypatch, tmp_path
) -> None:
    """An item of a table keyed by two attributes cannot be named by one string; without
    `items` the same table is fine (every item, whatever its key)."""
    clients, settings = aws
    create_table(clients.dynamodb, "teams", "orgId", "teamId")
    path = tmp_path / "map.yaml"
    path.write_text(
        APP_MAP.read_text()
        + "  teams: {table: teams, items: [t1], list: members, list_key: userId}\n"
    )
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    with pytest.raises(DataMapError) as raised:
        checked_data_map(clients, settings)
    assert raised.value.problems == [
        "stores.teams.items: table 'teams' has a composite key: an item is named by its "
        "partition key alone; leave out `items` to act on every item"
    ]
    path.write_text(
        APP_MAP.read_text() + "  teams: {table: teams, list: members, list_key: userId}\n"
    )
    assert [s.name for s in checked_data_map(clients, settings).stores][-1] == "teams"


def test_the_apps_own_scoreboards_changed_into_another_list_store_are_refused(
    aws, monkeypatch, tmp_path
) -> None:
    """List stores are acted on by their kind, but the app's own scoreboards keep the app's own
    code: declared otherwise than the built-in map has them, they are refused."""
    clients, settings = aws
    path = tmp_path / "map.yaml"
    text = APP_MAP.read_text()
    assert "items: [week, month]" in text
    path.write_text(text.replace("items: [week, month]", "items: [week, month, year]"))
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    with pytest.raises(DataMapError) as raised:
        checked_data_map(clients, settings)
    assert raised.value.problems == [
        "stores.scoreboards: the app's own store must be declared as the built-in map has it"
    ]
