"""The data map's stores on AWS: that every table, index and bucket the map names exists, checked
before any side effect; and the account's tables and buckets, for the coverage check."""

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.data_map import (
    LIST,
    PARTITION_KEY,
    DataMap,
    DataMapError,
    Store,
    load_data_map,
)
from cleanup_pipeline.core.settings import Settings

_MISSING_TABLE = "ResourceNotFoundException"
_MISSING_BUCKET = {"NoSuchBucket", "404", "NotFound"}


def _hash_key(key_schema: Iterable[dict[str, str]]) -> str | None:
    return next((k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH"), None)


def _describe(dynamodb: Any, table: str) -> dict[str, Any] | str:
    """The table's description, or why there is none."""
    try:
        return dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return "does not exist" if code == _MISSING_TABLE else f"cannot be described ({code})"


def _index_problem(store: Store, table: dict[str, Any]) -> str | None:
    """Why `store` cannot be read by a Query of its table or index, if it cannot."""
    where = f"stores.{store.name}"
    if not store.index:
        key = _hash_key(table["KeySchema"])
        if key != store.key:
            return (
                f"{where}.partition_key: table {store.table!r} is keyed by {key!r}, not "
                f"{store.key!r}: give the index whose key it is"
            )
        return None
    indexes = {
        index["IndexName"]: index
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
        for index in table.get(kind, [])
    }
    index = indexes.get(store.index)
    if index is None:
        return f"{where}.index: table {store.table!r} has no index {store.index!r}"
    key = _hash_key(index["KeySchema"])
    if key != store.key:
        return (
            f"{where}.index: index {store.index!r} of {store.table!r} is keyed by {key!r}, not "
            f"the store's partition_key {store.key!r}"
        )
    # A hit on the index is confirmed by reading its item by the table's key, which every
    # index projects; a table without a key schema could not be read back.
    if not _hash_key(table["KeySchema"]):
        return f"{where}.index: table {store.table!r} has no key to read a hit back by"
    return None


def _bucket_problem(s3: Any, bucket: str) -> str | None:
    # GetBucketVersioning answers for the bucket itself, like HeadBucket, without the
    # permission to list the whole bucket that HeadBucket needs.
    try:
        s3.get_bucket_versioning(Bucket=bucket)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return "does not exist" if code in _MISSING_BUCKET else f"cannot be read ({code})"
    return None


def store_problems(dynamodb: Any, s3: Any, settings: Settings, data_map: DataMap) -> list[str]:
    """Every table, index and bucket the job needs that is missing or does not fit: the
    users, emails and holds tables and each store's table, index and bucket; each table and
    bucket asked about once."""
    problems: list[str] = []
    described: dict[str, dict[str, Any] | str] = {}

    def table(name: str) -> dict[str, Any] | str:
        if name not in described:
            described[name] = _describe(dynamodb, name)
        return described[name]

    job_tables = {
        "USERS_TABLE_NAME": settings.users_table,
        "EMAILS_TABLE_NAME": settings.emails_table,
        **({"HOLDS_TABLE_NAME": settings.holds_table} if settings.holds_table else {}),
    }
    for variable, name in job_tables.items():
        found = table(name)
        if isinstance(found, str):
            problems.append(f"{variable}: table {name!r} {found}")
    buckets: dict[str, str | None] = {}
    for store in data_map.stores:
        where = f"stores.{store.name}"
        if store.bucket:
            if store.bucket not in buckets:
                buckets[store.bucket] = _bucket_problem(s3, store.bucket)
            if buckets[store.bucket]:
                problems.append(f"{where}.bucket: bucket {store.bucket!r} {buckets[store.bucket]}")
            continue
        found = table(store.table)
        if isinstance(found, str):
            problems.append(f"{where}.table: table {store.table!r} {found}")
        elif store.kind == PARTITION_KEY:
            problem = _index_problem(store, found)
            if problem:
                problems.append(problem)
        elif store.kind == LIST and store.items is not None and len(found["KeySchema"]) > 1:
            problems.append(
                f"{where}.items: table {store.table!r} has a composite key: an item is named by "
                "its partition key alone; leave out `items` to act on every item"
            )
    return problems


def require_stores(dynamodb: Any, s3: Any, settings: Settings, data_map: DataMap) -> None:
    """Raise one `DataMapError` naming every missing or unfitting table, index and bucket."""
    problems = store_problems(dynamodb, s3, settings, data_map)
    if problems:
        raise DataMapError(data_map.source, problems)


def checked_data_map(clients: AwsClients, settings: Settings) -> DataMap:
    """The data map (`CLEANUP_DATA_MAP`, or the built-in one), its shape and then its stores'
    existence checked, before anything is written: a `DataMapError` names every problem."""
    data_map = load_data_map(settings)
    problems = store_problems(clients.dynamodb, clients.s3, settings, data_map)
    if problems:
        raise DataMapError(data_map.source, problems)
    return data_map


def account_tables(dynamodb: Any) -> list[str]:
    """Every table name of the account in the client's region (all pages)."""
    names: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return names


def account_buckets(s3: Any) -> list[str]:
    """Every bucket name of the account."""
    return [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]
