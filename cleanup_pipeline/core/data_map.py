"""Where a user's data lives: the data map the cascade, the archive, restore, purge, the proof of
deletion and the IAM policy all follow, store by store.

A map is YAML (`CLEANUP_DATA_MAP` names the file; unset, the built-in map of the app's own stores
applies). `${VAR}` and `${VAR:-default}` in string values are expanded from the environment.

    stores:
      files:       {s3_prefix: "{id}/"}             # bucket: PUBLIC_BUCKET_NAME unless `bucket:`
      features:    {table: features, attribute: proposedBy, action: remove_attribute}
      scoreboards: {table: scoreboards, items: [week, month], list: users, list_key: id}
      sessions:    {table: sessions, partition_key: userId}              # every item of the user
      comments:    {table: comments, index: byAuthor, partition_key: authorId}  # through a GSI
    unmapped: [emails, "app-static-*"]   # tables and buckets known to hold no user data
    coverage: ["increaser-*"]             # optional: every matching table or bucket is declared

Stores are acted on in the file's order, the users item deleted last, after every store. A map
is checked as a whole: one `DataMapError` names every bad store and field, before anything runs.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from cleanup_pipeline.core.settings import Settings

MAP_VARIABLE = "CLEANUP_DATA_MAP"

S3_PREFIX, PARTITION_KEY, ATTRIBUTE, LIST = "s3_prefix", "partition_key", "attribute", "list"
KINDS = (S3_PREFIX, PARTITION_KEY, ATTRIBUTE, LIST)
DELETE_OBJECTS, DELETE_ITEMS = "delete_objects", "delete_items"
REMOVE_ATTRIBUTE, REMOVE_LIST_ENTRIES = "remove_attribute", "remove_list_entries"
# The actions each kind allows; the first is the kind's default where it has only one.
ACTIONS: dict[str, tuple[str, ...]] = {
    S3_PREFIX: (DELETE_OBJECTS,),
    PARTITION_KEY: (DELETE_ITEMS,),
    ATTRIBUTE: (REMOVE_ATTRIBUTE, DELETE_ITEMS),
    LIST: (REMOVE_LIST_ENTRIES,),
}
# The fields each kind reads; any other is an error (a typo must not silently do nothing).
FIELDS: dict[str, frozenset[str]] = {
    S3_PREFIX: frozenset({S3_PREFIX, "bucket", "action"}),
    PARTITION_KEY: frozenset({PARTITION_KEY, "table", "index", "action"}),
    ATTRIBUTE: frozenset({ATTRIBUTE, "table", "action"}),
    LIST: frozenset({LIST, "table", "items", "list_key", "action"}),
}
TOP_LEVEL = frozenset({"stores", "unmapped", "coverage"})
STORE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# A default may hold `{id}` (braces one level deep): `${PUBLIC_BUCKET_USER_FOLDER:-{id}/}`.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^{}]|\{[^{}]*\})*))?\}")


class DataMapError(ValueError):
    """A data map that cannot be used, with every problem found, each naming its store and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Store:
    """One place that holds user data, and what the cascade does there.

    `s3_prefix`: every object under `bucket`/`prefix` (a template with `{id}`, ending in `/`).
    `partition_key`: the items of `table` (or of its GSI `index`) whose `key` equals the user id.
    `attribute`: the items of `table` whose attribute `key` equals the id (one scan per run).
    `list`: the entries of the list attribute `list_attribute` whose `list_key` equals the id, in
    the items `items` of `table` (every item when None)."""

    name: str
    kind: str
    action: str
    table: str = ""
    bucket: str = ""
    prefix: str = ""
    index: str = ""
    key: str = ""
    list_attribute: str = ""
    list_key: str = ""
    items: tuple[str, ...] | None = None
    # The attribute naming a `list` store's `items`, where it is known without describing the
    # table (the app's scoreboards are keyed by `id`); empty: the table's partition key.
    item_key: str = field(default="", compare=False)

    def prefix_of(self, user_id: str) -> str:
        return self.prefix.replace("{id}", user_id)

    @property
    def place(self) -> str:
        """Where the store is, for messages: its bucket or its table (and index)."""
        if self.kind == S3_PREFIX:
            return f"s3://{self.bucket}/{self.prefix}"
        return f"{self.table}/{self.index}" if self.index else self.table


@dataclass(frozen=True)
class DataMap:
    stores: tuple[Store, ...]
    unmapped: tuple[str, ...] = ()
    coverage: tuple[str, ...] | None = None
    source: str = "the built-in data map"

    def of_kind(self, *kinds: str) -> list[Store]:
        return [store for store in self.stores if store.kind in kinds]

    @property
    def tables(self) -> set[str]:
        return {store.table for store in self.stores if store.table}

    @property
    def buckets(self) -> set[str]:
        return {store.bucket for store in self.stores if store.bucket}


# The names of the app's own stores in the built-in map.
FILES, FEATURES, SCOREBOARDS = "files", "features", "scoreboards"


def builtin_map(settings: Settings) -> DataMap:
    """The app's own stores: the user's folder in the public bucket, the features they proposed
    and their entries on the scoreboards of the configured periods."""
    return DataMap(
        stores=(
            Store(
                FILES,
                S3_PREFIX,
                DELETE_OBJECTS,
                bucket=settings.public_bucket_name,
                prefix=settings.user_folder_template,
            ),
            Store(
                FEATURES,
                ATTRIBUTE,
                REMOVE_ATTRIBUTE,
                table=settings.features_table,
                key="proposedBy",
            ),
            Store(
                SCOREBOARDS,
                LIST,
                REMOVE_LIST_ENTRIES,
                table=settings.scoreboards_table,
                list_attribute="users",
                list_key="id",
                items=settings.scoreboard_periods,
                item_key="id",
            ),
        )
    )


def extra_stores(data_map: DataMap, settings: Settings) -> list[Store]:
    """The map's stores other than the app's own (those equal to a built-in store), in the
    map's order: the cascade acts on these through their kind's functions alone."""
    own = set(builtin_map(settings).stores)
    return [store for store in data_map.stores if store not in own]


def load_data_map(settings: Settings, env: Mapping[str, str] | None = None) -> DataMap:
    """The map `CLEANUP_DATA_MAP` names, or the built-in one when it is unset or blank."""
    env = os.environ if env is None else env
    location = (env.get(MAP_VARIABLE) or "").strip()
    if not location:
        return builtin_map(settings)
    source = f"{MAP_VARIABLE} {location}"
    try:
        text = Path(location).read_text(encoding="utf-8")
    except OSError as error:
        raise DataMapError(source, [f"cannot be read ({error.strerror or error})"]) from None
    return parse_data_map(text, settings, env, source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the last would win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _expand(value: str, env: Mapping[str, str], where: str, problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found:
            return found
        if default is not None:
            return default
        problems.append(f"{where}: ${{{name}}} is not set")
        return ""

    return _VARIABLE.sub(replace, value)


def _text(raw: Any, env: Mapping[str, str], where: str, problems: list[str]) -> str:
    if raw is None:
        problems.append(f"{where}: required")
        return ""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        problems.append(f"{where}: must be a string")
        return ""
    before = len(problems)
    text = _expand(str(raw), env, where, problems).strip()
    if not text and len(problems) == before:
        problems.append(f"{where}: must not be empty")
    return text


def _names(raw: Any, env: Mapping[str, str], where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: must be a non-empty list of strings")
        return ()
    return tuple(_text(value, env, f"{where}[{i}]", problems) for i, value in enumerate(raw))


def _kind(name: str, fields: Mapping[str, Any], problems: list[str]) -> str | None:
    kinds = [kind for kind in KINDS if kind in fields]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        problems.append(f"stores.{name}: needs exactly one of {', '.join(KINDS)} (found {found})")
        return None
    return kinds[0]


def _prefix(template: str, where: str, problems: list[str]) -> None:
    others = template.replace("{id}", "")
    if "{id}" not in template or "{" in others or "}" in others or not template.endswith("/"):
        problems.append(f"{where}: must contain '{{id}}', no other '{{' or '}}', and end with '/'")


def _store(
    name: str, fields: Any, settings: Settings, env: Mapping[str, str], problems: list[str]
) -> Store | None:
    where = f"stores.{name}"
    if not STORE_NAME.fullmatch(name):
        problems.append(f"{where}: a store's name is lowercase letters, digits and '_'")
    if not isinstance(fields, dict):
        problems.append(f"{where}: must be a mapping of fields")
        return None
    kind = _kind(name, fields, problems)
    if kind is None:
        return None
    for unknown in sorted(set(map(str, fields)) - FIELDS[kind]):
        problems.append(f"{where}.{unknown}: unknown field for {kind} stores")
    allowed = ACTIONS[kind]
    action = fields.get("action")
    if action is None and len(allowed) == 1:
        action = allowed[0]
    if action not in allowed:
        choices = " or ".join(allowed)
        found = "missing" if action is None else f"{action!r} does not fit"
        problems.append(f"{where}.action: {found}: {kind} stores take {choices}")

    def text(field: str) -> str:
        return _text(fields.get(field), env, f"{where}.{field}", problems)

    if kind == S3_PREFIX:
        prefix = text(S3_PREFIX)
        _prefix(prefix, f"{where}.{S3_PREFIX}", problems)
        bucket = text("bucket") if "bucket" in fields else settings.public_bucket_name
        return Store(name, kind, str(action), bucket=bucket, prefix=prefix)
    table = text("table")
    if table and table == settings.users_table:
        problems.append(f"{where}.table: the users table is deleted last, never a store")
    if kind == PARTITION_KEY:
        index = text("index") if "index" in fields else ""
        return Store(name, kind, str(action), table=table, index=index, key=text(PARTITION_KEY))
    if kind == ATTRIBUTE:
        return Store(name, kind, str(action), table=table, key=text(ATTRIBUTE))
    items = _names(fields["items"], env, f"{where}.items", problems) if "items" in fields else None
    return Store(
        name,
        kind,
        str(action),
        table=table,
        list_attribute=text(LIST),
        list_key=text("list_key"),
        items=items,
        item_key="id" if table == settings.scoreboards_table else "",
    )


def parse_data_map(
    text: str, settings: Settings, env: Mapping[str, str], source: str = "data map"
) -> DataMap:
    """The map in `text`, checked whole: raises `DataMapError` naming every problem found."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise DataMapError(source, ["not valid YAML: " + " ".join(str(error).split())]) from None
    if not isinstance(document, dict):
        raise DataMapError(source, ["must be a mapping with `stores`"])
    problems = [f"{key}: unknown key" for key in sorted(map(str, set(document) - TOP_LEVEL))]
    raw_stores = document.get("stores")
    stores: list[Store] = []
    if not isinstance(raw_stores, dict) or not raw_stores:
        problems.append("stores: must map at least one store name to its fields")
    else:
        for name, fields in raw_stores.items():
            store = _store(str(name), fields, settings, env, problems)
            if store is not None:
                stores.append(store)
    unmapped = (
        _names(document["unmapped"], env, "unmapped", problems) if "unmapped" in document else ()
    )
    coverage = (
        _names(document["coverage"], env, "coverage", problems) if "coverage" in document else None
    )
    if problems:
        raise DataMapError(source, problems)
    return DataMap(tuple(stores), unmapped, coverage, source)


@dataclass(frozen=True)
class Coverage:
    """What the coverage check found: the app's tables and buckets (those matching a `coverage`
    pattern) that are neither a store's, the job's own, nor declared `unmapped`."""

    patterns: tuple[str, ...] | None
    tables: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    listed_tables: int = 0
    listed_buckets: int = 0

    @property
    def checked(self) -> bool:
        return self.patterns is not None

    @property
    def passed(self) -> bool:
        return not self.tables and not self.buckets

    @property
    def description(self) -> str:
        if not self.checked:
            return "coverage is off: the data map has no `coverage` patterns"
        if self.passed:
            return (
                f"every table and bucket matching {', '.join(self.patterns or ())} is a store, "
                "one of the job's own, or unmapped"
            )
        named = [f"table {name}" for name in self.tables]
        named += [f"bucket {name}" for name in self.buckets]
        return (
            f"not in the data map: {', '.join(named)}. Declare each as a store, or in `unmapped` "
            "if it holds no user data; no deletion runs until then"
        )


def _bucket_of(location: str) -> str | None:
    return location.removeprefix("s3://").split("/")[0] if location.startswith("s3://") else None


def coverage_of(
    data_map: DataMap, settings: Settings, tables: list[str], buckets: list[str]
) -> Coverage:
    """The account's `tables` and `buckets` that match a `coverage` pattern but are not known:
    a store's table or bucket, the users, emails, holds or requests table, the archive's or the
    reports' bucket, or a name matching an `unmapped` pattern."""
    if data_map.coverage is None:
        return Coverage(None)
    job_tables = {
        settings.users_table,
        settings.emails_table,
        settings.holds_table,
        settings.requests_table,
    }
    job_buckets = {_bucket_of(settings.archive_location), _bucket_of(settings.reports_location)}

    def unknown(names: list[str], known: set[str | None]) -> tuple[str, ...]:
        return tuple(
            sorted(
                name
                for name in set(names)
                if any(fnmatchcase(name, pattern) for pattern in data_map.coverage or ())
                and name not in known
                and not any(fnmatchcase(name, pattern) for pattern in data_map.unmapped)
            )
        )

    return Coverage(
        data_map.coverage,
        unknown(tables, {*data_map.tables, *job_tables}),
        unknown(buckets, {*data_map.buckets, *job_buckets}),
        len(tables),
        len(buckets),
    )


def own_stores(data_map: DataMap, settings: Settings) -> frozenset[str]:
    """The names of the app's own stores (those of the built-in map) that the map declares as
    the built-in map has them: the cascade acts on these through its own steps. A map may leave
    any of them out (nothing of it is touched), or declare it otherwise (on another table,
    bucket or prefix, or with another action): it is then a store like any other, acted on
    through its kind's functions."""
    declared = set(data_map.stores)
    return frozenset(store.name for store in builtin_map(settings).stores if store in declared)
