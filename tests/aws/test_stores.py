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
from cleanup_pipeline.core.data_map import (
    MAP_VARIABLE,
    DataMapError,
    builtin_map,
    extra_stores,
    load_data_map,
    own_stores,
)
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


def test_every_kind_of_store_passes_and_a_missing_table_alone_is_refused(aws, every_kind) -> None:
    """The cascade acts on stores of every kind: of the every-kind map, only the table that
    does not exist is refused."""
    clients, settings = aws
    create_every_kind_stores(clients, skip=("teams",))
    with pytest.raises(DataMapError) as raised:
        checked_data_map(clients, settings)
    assert raised.value.problems == ["stores.teams.table: table 'teams' does not exist"]
    create_table(clients.dynamodb, "teams", "id")
    assert [s.name for s in checked_data_map(clients, settings).stores] == [
        "files",
        "avatars",
        "features",
        "drafts",
        "scoreboards",
        "teams",
        "sessions",
        "comments",
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


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        (("[week, month]", "[week, month, year]"), "scoreboards"),
        (("attribute: proposedBy", "attribute: author"), "features"),
        (("{id}/", "media/{id}/"), "files"),
    ],
)
def test_the_apps_own_stores_may_be_declared_otherwise(
    aws, monkeypatch, tmp_path, change, changed
) -> None:
    """A map may declare the app's own stores otherwise than the built-in map has them (another
    prefix, attribute or set of boards): such a store is one like any other, and the check
    passes; those the map declares as the built-in map has them keep the cascade's own steps."""
    clients, settings = aws
    path = tmp_path / "map.yaml"
    text = APP_MAP.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1))
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    data_map = checked_data_map(clients, settings)
    assert own_stores(data_map, settings) == {"files", "features", "scoreboards"} - {changed}
    assert [store.name for store in extra_stores(data_map, settings)] == [changed]
