"""The data map: the built-in map is the app's own stores, `${VAR}` expansion, and one error
naming every bad store and field of a map that cannot be used."""

from pathlib import Path

import pytest

from cleanup_pipeline.core.data_map import (
    ATTRIBUTE,
    DELETE_ITEMS,
    DELETE_OBJECTS,
    LIST,
    MAP_VARIABLE,
    PARTITION_KEY,
    REMOVE_ATTRIBUTE,
    REMOVE_LIST_ENTRIES,
    S3_PREFIX,
    DataMap,
    DataMapError,
    Store,
    builtin_map,
    load_data_map,
    parse_data_map,
)
from cleanup_pipeline.core.settings import Settings, load_settings
from tests.support.data_maps import APP_MAP, EVERY_KIND_MAP


@pytest.fixture
def settings() -> Settings:
    return load_settings()


def parse(text: str, settings: Settings, **env: str) -> DataMap:
    return parse_data_map(text, settings, env, "test map")


def problems(text: str, settings: Settings, **env: str) -> list[str]:
    with pytest.raises(DataMapError) as raised:
        parse(text, settings, **env)
    assert str(raised.value) == "test map: " + "; ".join(raised.value.problems)
    assert "\n" not in str(raised.value)
    return raised.value.problems


def test_the_builtin_map_is_the_apps_own_stores(monkeypatch) -> None:
    monkeypatch.setenv("PUBLIC_BUCKET_USER_FOLDER", "users/{id}/")
    monkeypatch.setenv("FEATURES_TABLE_NAME", "app-features")
    monkeypatch.setenv("SCOREBOARDS_TABLE_NAME", "app-scoreboards")
    monkeypatch.setenv("SCOREBOARD_PERIODS", "week, month, year")
    settings = load_settings()
    assert builtin_map(settings) == DataMap(
        stores=(
            Store(
                "files", S3_PREFIX, DELETE_OBJECTS, bucket="increaser-public", prefix="users/{id}/"
            ),
            Store("features", ATTRIBUTE, REMOVE_ATTRIBUTE, table="app-features", key="proposedBy"),
            Store(
                "scoreboards",
                LIST,
                REMOVE_LIST_ENTRIES,
                table="app-scoreboards",
                list_attribute="users",
                list_key="id",
                items=("week", "month", "year"),
            ),
        )
    )
    assert builtin_map(settings).coverage is None
    assert builtin_map(settings).stores[0].prefix_of("u1") == "users/u1/"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_the_builtin_map_applies(settings, value) -> None:
    env = {} if value is None else {MAP_VARIABLE: value}
    assert load_data_map(settings, env) == builtin_map(settings)


def test_every_kind_parses_in_the_files_order(settings) -> None:
    data_map = parse(
        """
stores:
  files: {s3_prefix: "{id}/"}
  avatars: {bucket: media, s3_prefix: "avatars/{id}/"}
  features: {table: features, attribute: proposedBy, action: remove_attribute}
  drafts: {table: drafts, attribute: author, action: delete_items}
  scoreboards: {table: scoreboards, items: [week, month], list: users, list_key: id}
  teams: {table: teams, list: members, list_key: userId}
  sessions: {table: sessions, partition_key: userId}
  comments: {table: comments, index: byAuthor, partition_key: authorId, action: delete_items}
unmapped: [emails, "static-*"]
coverage: ["app-*"]
""",
        settings,
    )
    assert [(s.name, s.kind, s.action) for s in data_map.stores] == [
        ("files", S3_PREFIX, DELETE_OBJECTS),
        ("avatars", S3_PREFIX, DELETE_OBJECTS),
        ("features", ATTRIBUTE, REMOVE_ATTRIBUTE),
        ("drafts", ATTRIBUTE, DELETE_ITEMS),
        ("scoreboards", LIST, REMOVE_LIST_ENTRIES),
        ("teams", LIST, REMOVE_LIST_ENTRIES),
        ("sessions", PARTITION_KEY, DELETE_ITEMS),
        ("comments", PARTITION_KEY, DELETE_ITEMS),
    ]
    by_name = {store.name: store for store in data_map.stores}
    assert by_name["files"].bucket == "increaser-public"  # PUBLIC_BUCKET_NAME by default
    assert by_name["avatars"].bucket == "media"
    assert by_name["teams"].items is None  # every item of the table
    assert by_name["comments"].place == "comments/byAuthor"
    assert (by_name["comments"].index, by_name["comments"].key) == ("byAuthor", "authorId")
    assert data_map.unmapped == ("emails", "static-*")
    assert data_map.coverage == ("app-*",)
    assert data_map.tables == {"features", "drafts", "scoreboards", "teams", "sessions", "comments"}
    assert data_map.buckets == {"increaser-public", "media"}


def test_variables_are_expanded_with_their_defaults(settings) -> None:
    text = """
stores:
  avatars: {bucket: "${AVATARS_BUCKET}", s3_prefix: "${AVATARS_ROOT:-avatars}/{id}/"}
  features: {table: "${FEATURES:-features}-${STAGE}", attribute: proposedBy, action: delete_items}
coverage: ["${STAGE}-*"]
"""
    data_map = parse(text, settings, AVATARS_BUCKET="media", STAGE="prod")
    avatars, features = data_map.stores
    assert (avatars.bucket, avatars.prefix) == ("media", "avatars/{id}/")
    assert features.table == "features-prod"
    assert data_map.coverage == ("prod-*",)
    data_map = parse(text, settings, AVATARS_BUCKET="m", STAGE="p", AVATARS_ROOT="a", FEATURES="f")
    assert (data_map.stores[0].prefix, data_map.stores[1].table) == ("a/{id}/", "f-p")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stores: {files: {s3_prefix: '{id}/'}}\nextra: 1", "extra: unknown key"),
        (
            "stores: {features: {table: f, attribute: a, action: remove_attribute, colour: red}}",
            "stores.features.colour: unknown field for attribute stores",
        ),
        (
            "stores: {features: {table: f, attribute: a, action: delete_objects}}",
            "stores.features.action: 'delete_objects' does not fit: attribute stores take "
            "remove_attribute or delete_items",
        ),
        (
            "stores: {s: {table: s, partition_key: k, action: erase}}",
            "stores.s.action: 'erase' does not fit: partition_key stores take delete_items",
        ),
        (
            "stores: {features: {table: f, attribute: a}}",
            "stores.features.action: missing: attribute stores take remove_attribute or "
            "delete_items",
        ),
        (
            "stores: {files: {s3_prefix: 'users/'}}",
            "stores.files.s3_prefix: must contain '{id}', no other '{' or '}', and end with '/'",
        ),
        (
            "stores: {files: {s3_prefix: 'users/{id}'}}",
            "stores.files.s3_prefix: must contain '{id}', no other '{' or '}', and end with '/'",
        ),
        (
            "stores: {Files: {s3_prefix: '{id}/'}}",
            "stores.Files: a store's name is lowercase letters, digits and '_'",
        ),
        (
            "stores: {users: {table: users, partition_key: id}}",
            "stores.users.table: the users table is deleted last, never a store",
        ),
        (
            "stores: {s: {table: s, partition_key: k, attribute: a}}",
            "stores.s: needs exactly one of s3_prefix, partition_key, attribute, list "
            "(found partition_key, attribute)",
        ),
        ("stores: {}", "stores: must map at least one store name to its fields"),
        ("[1, 2]", "must be a mapping with `stores`"),
        (
            "stores: {s: {table: '${SESSIONS_TABLE}', partition_key: k}}",
            "stores.s.table: ${SESSIONS_TABLE} is not set",
        ),
        (
            "stores: {t: {table: t, list: members, list_key: id, items: []}}",
            "stores.t.items: must be a non-empty list of strings",
        ),
    ],
)
def test_each_problem_is_named(settings, text, expected) -> None:
    assert expected in problems(text, settings)


def test_a_duplicate_store_name_is_refused(settings) -> None:
    found = problems(
        "stores:\n  s: {table: a, partition_key: k}\n  s: {table: b, partition_key: k}", settings
    )
    assert len(found) == 1
    assert found[0].startswith("not valid YAML") and "'s' is given twice" in found[0]


def test_yaml_that_does_not_parse_is_refused_on_one_line(settings) -> None:
    found = problems("stores: {files: [s3_prefix: '{id}/'", settings)
    assert len(found) == 1 and found[0].startswith("not valid YAML: ")


def test_one_error_names_every_bad_store_and_field_at_once(settings) -> None:
    text = """
stores:
  files: {s3_prefix: "users/"}
  features: {table: features, attribute: proposedBy}
  Bad-Name: {table: x, partition_key: k}
  users: {table: users, partition_key: id}
  sessions: {table: sessions, partition_key: userId, colour: red, action: remove_attribute}
  avatars: {bucket: "${AVATARS_BUCKET}", s3_prefix: "{id}/"}
unmapped: "emails"
tables: []
"""
    assert problems(text, settings) == [
        "tables: unknown key",
        "stores.files.s3_prefix: must contain '{id}', no other '{' or '}', and end with '/'",
        "stores.features.action: missing: attribute stores take remove_attribute or delete_items",
        "stores.Bad-Name: a store's name is lowercase letters, digits and '_'",
        "stores.users.table: the users table is deleted last, never a store",
        "stores.sessions.colour: unknown field for partition_key stores",
        "stores.sessions.action: 'remove_attribute' does not fit: partition_key stores take "
        "delete_items",
        "stores.avatars.bucket: ${AVATARS_BUCKET} is not set",
        "unmapped: must be a non-empty list of strings",
    ]


def test_a_file_is_read_from_the_variable_and_one_that_cannot_be_read_is_named(
    settings, tmp_path: Path
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("stores:\n  sessions: {table: sessions, partition_key: userId}\n")
    data_map = load_data_map(settings, {MAP_VARIABLE: str(path)})
    assert [s.name for s in data_map.stores] == ["sessions"]
    assert data_map.source == f"{MAP_VARIABLE} {path}"
    missing = tmp_path / "absent.yaml"
    with pytest.raises(DataMapError, match=rf"^{MAP_VARIABLE} {missing}: cannot be read \("):
        load_data_map(settings, {MAP_VARIABLE: str(missing)})
    with pytest.raises(DataMapError, match="cannot be read"):
        load_data_map(settings, {MAP_VARIABLE: str(tmp_path)})  # a folder
    path.write_text("stores: {s: {table: s, partition_key: k, index: '${INDEX}'}}")
    with pytest.raises(DataMapError, match=r"stores\.s\.index: \$\{INDEX\} is not set"):
        load_data_map(settings, {MAP_VARIABLE: str(path)})


def test_a_default_may_hold_the_id_placeholder(settings) -> None:
    text = 'stores: {files: {s3_prefix: "${USER_FOLDER:-{id}/}"}}'
    assert parse(text, settings).stores[0].prefix == "{id}/"
    assert parse(text, settings, USER_FOLDER="users/{id}/").stores[0].prefix == "users/{id}/"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            "PUBLIC_BUCKET_USER_FOLDER": "users/{id}/",
            "FEATURES_TABLE_NAME": "app-features",
            "SCOREBOARDS_TABLE_NAME": "app-scoreboards",
        },
    ],
)
def test_the_shipped_app_map_is_the_builtin_map(monkeypatch, env) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    shipped = load_data_map(settings, {**env, MAP_VARIABLE: str(APP_MAP)})
    builtin = builtin_map(settings)
    assert (shipped.stores, shipped.unmapped, shipped.coverage) == (
        builtin.stores,
        builtin.unmapped,
        builtin.coverage,
    )


def test_the_every_kind_example_parses_with_every_kind_and_action(settings) -> None:
    data_map = load_data_map(settings, {MAP_VARIABLE: str(EVERY_KIND_MAP)})
    assert {(store.kind, store.action) for store in data_map.stores} == {
        (S3_PREFIX, DELETE_OBJECTS),
        (ATTRIBUTE, REMOVE_ATTRIBUTE),
        (ATTRIBUTE, DELETE_ITEMS),
        (LIST, REMOVE_LIST_ENTRIES),
        (PARTITION_KEY, DELETE_ITEMS),
    }
    assert len({store.bucket for store in data_map.of_kind(S3_PREFIX)}) == 2
    assert any(store.index for store in data_map.of_kind(PARTITION_KEY))
    assert any(store.items is None for store in data_map.of_kind(LIST))
    assert data_map.unmapped and data_map.coverage
