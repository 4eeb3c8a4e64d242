"""The emulator lists a prefix's object versions as S3 does, and queries a table by its partition
key as DynamoDB does: the same answers as moto's own, at a cost that follows the folder listed or
the partition queried, not the whole bucket or table."""

import copy
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import table as table_models
from moto.s3 import models as s3_models

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.local.emulator import (
    LOCAL_ENV,
    list_versions_by_prefix,
    moto_server,
    query_by_partition,
)

Listing = list[dict[str, Any]]


def unpatched() -> Any:
    """moto's own `list_object_versions`, whether or not the emulator's is in place."""
    list_versions_by_prefix()
    return s3_models.S3Backend.list_object_versions.__wrapped__


def pages(s3: Any, bucket: str, **params: Any) -> Listing:
    """Every page of a listing, without the response metadata."""
    found: Listing = []
    while True:
        page = s3.list_object_versions(Bucket=bucket, **params)
        page.pop("ResponseMetadata")
        found.append(page)
        if not page["IsTruncated"]:
            return found
        params = {**params, "KeyMarker": page["NextKeyMarker"]}
        if page.get("NextVersionIdMarker"):
            params["VersionIdMarker"] = page["NextVersionIdMarker"]


def put(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


@pytest.fixture
def neighbours(aws: tuple[AwsClients, Settings]) -> tuple[Any, str]:
    """A versioned bucket where `u1/` has neighbours sharing its first characters (`u1`, `u10/`),
    keys with several versions, and delete markers inside and outside the folder."""
    clients, settings = aws
    s3, bucket = clients.s3, settings.public_bucket_name
    put(s3, bucket, ["u1/a.txt", "u1/a.txt", "u1/a.txt", "u1/b.txt", "u1/sub/c.txt"])
    put(s3, bucket, ["u1", "u10/a.txt", "u10/a.txt", "u10/b.txt", "u2/a.txt", "t9/z.txt"])
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "u1/b.txt"}, {"Key": "u2/a.txt"}]})
    return s3, bucket


@pytest.mark.parametrize(
    "params",
    [
        {"Prefix": "u1/"},
        {"Prefix": "u1"},
        {"Prefix": "u10/"},
        {"Prefix": "u1/", "Delimiter": "/"},
        {"Prefix": "u1", "MaxKeys": 2},
        {"Prefix": "u1/", "KeyMarker": "u1/a.txt"},
        {"Prefix": "u1/", "KeyMarker": "u1"},
        {"Prefix": "u1/", "KeyMarker": "u1", "VersionIdMarker": "of the key marker"},
        {"Prefix": "u3/"},
        {},
    ],
    ids=repr,
)
def test_a_listing_answers_as_moto_does(
    neighbours: tuple[Any, str], params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, bucket = neighbours
    if "VersionIdMarker" in params:  # a marker outside the prefix, where moto looks for it
        key = params["KeyMarker"]
        marker = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]
        params = {**params, "VersionIdMarker": marker["VersionId"]}
    with monkeypatch.context() as moto_alone:
        moto_alone.setattr(s3_models.S3Backend, "list_object_versions", unpatched())
        expected = pages(s3, bucket, **params)
    list_versions_by_prefix()

    assert pages(s3, bucket, **params) == expected
    if params.get("Prefix") == "u1/" and len(params) == 1:  # the folder, nothing of u10/ or u1
        listed = [v["Key"] for v in expected[0]["Versions"] + expected[0]["DeleteMarkers"]]
        assert sorted(listed) == ["u1/a.txt"] * 3 + ["u1/b.txt"] * 2 + ["u1/sub/c.txt"]


@pytest.fixture
def copied_versions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many stored versions moto deep-copies while it lists (its listing copies each key's
    list of versions)."""
    copied = [0]
    kinds = (s3_models.FakeKey, s3_models.FakeDeleteMarker)

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, list):
            copied[0] += sum(isinstance(v, kinds) for v in value)
        return copy.deepcopy(value, memo)

    monkeypatch.setattr(s3_models, "copy", SimpleNamespace(deepcopy=deepcopy, copy=copy.copy))
    yield copied


def test_listing_a_folder_copies_the_folder_not_the_bucket(
    aws: tuple[AwsClients, Settings],
    copied_versions: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients, settings = aws
    s3, bucket = clients.s3, settings.public_bucket_name
    put(s3, bucket, ["u1/a.txt", "u1/a.txt", "u1/b.txt"])
    s3.delete_object(Bucket=bucket, Key="u1/b.txt")  # 4 versions: 2 + 1 + a delete marker
    list_versions_by_prefix()
    copies = []
    for folders in (10, 100):
        put(s3, bucket, [f"u{n}/{name}" for n in range(10, folders) for name in ("a", "b")])
        copied_versions[0] = 0
        s3.list_object_versions(Bucket=bucket, Prefix="u1/")
        copies.append(copied_versions[0])

    assert copies == [4, 4]
    with monkeypatch.context() as moto_alone:  # moto's own copies every version in the bucket
        moto_alone.setattr(s3_models.S3Backend, "list_object_versions", unpatched())
        copied_versions[0] = 0
        s3.list_object_versions(Bucket=bucket, Prefix="u1/")
    assert copied_versions[0] == 4 + 2 * 90


def test_the_emulator_server_lists_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_models.S3Backend, "list_object_versions", unpatched())
    with moto_server() as endpoint:
        assert getattr(s3_models.S3Backend.list_object_versions, "_by_prefix", False)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=LOCAL_ENV["AWS_REGION"])
        s3.create_bucket(Bucket="folders")
        put(s3, "folders", ["u1/a.txt", "u10/a.txt"])
        listed = s3.list_object_versions(Bucket="folders", Prefix="u1/")
    assert [v["Key"] for v in listed["Versions"]] == ["u1/a.txt"]


def test_patching_twice_keeps_one_patch() -> None:
    list_versions_by_prefix()
    once = s3_models.S3Backend.list_object_versions
    list_versions_by_prefix()
    assert s3_models.S3Backend.list_object_versions is once
    assert not getattr(once.__wrapped__, "_by_prefix", False)


def moto_query() -> Any:
    """moto's own `Table.query`, whether or not the emulator's is in place."""
    query_by_partition()
    return table_models.Table.query.__wrapped__


def queried(dynamodb: Any, **params: Any) -> list[dict[str, Any]]:
    """Every page of a Query, without the response metadata."""
    found: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**params)
        page.pop("ResponseMetadata")
        found.append(page)
        if "LastEvaluatedKey" not in page:
            return found
        params = {**params, "ExclusiveStartKey": page["LastEvaluatedKey"]}


@pytest.fixture
def partitions(aws: tuple[AwsClients, Settings]) -> Any:
    """`sessions` keyed by (userId, sessionId), where `u1` has neighbours sharing its first
    characters (`u10`, `u1x`), and `plain`, keyed by `id` alone."""
    dynamodb = aws[0].dynamodb
    for name, keys in (("sessions", ("userId", "sessionId")), ("plain", ("id",))):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": key, "KeyType": kind}
                for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)
            ],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    sessions = [
        {"userId": {"S": user}, "sessionId": {"S": f"s{n}"}, "device": {"S": f"d{n % 2}"}}
        for user in ("u1", "u10", "u1x", "u2")
        for n in (3, 1, 2, 5)
    ]
    batch_write(dynamodb, "sessions", sessions)
    batch_write(dynamodb, "plain", [{"id": {"S": i}, "n": {"N": "1"}} for i in ("u1", "u10")])
    return dynamodb


U1 = {"KeyConditionExpression": "userId = :u", "ExpressionAttributeValues": {":u": {"S": "u1"}}}


@pytest.mark.parametrize(
    "params",
    [
        {"TableName": "sessions", **U1},
        {"TableName": "sessions", **U1, "ConsistentRead": True, "Limit": 3},
        {"TableName": "sessions", **U1, "ScanIndexForward": False},
        {
            "TableName": "sessions",
            "KeyConditionExpression": "userId = :u AND begins_with(sessionId, :s)",
            "ExpressionAttributeValues": {":u": {"S": "u1"}, ":s": {"S": "s"}},
        },
        {
            "TableName": "sessions",
            **U1,
            "FilterExpression": "device = :d",
            "ExpressionAttributeValues": {":u": {"S": "u1"}, ":d": {"S": "d1"}},
        },
        {"TableName": "sessions", **U1, "ProjectionExpression": "sessionId"},
        {
            "TableName": "sessions",
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": "u3"}},
        },
        {
            "TableName": "plain",
            "KeyConditionExpression": "id = :u",
            "ExpressionAttributeValues": {":u": {"S": "u1"}},
        },
        {
            "TableName": "plain",
            "KeyConditionExpression": "id = :u",
            "ExpressionAttributeValues": {":u": {"S": "u3"}},
        },
    ],
    ids=repr,
)
def test_a_table_query_answers_as_moto_does(
    partitions: Any, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as moto_alone:
        moto_alone.setattr(table_models.Table, "query", moto_query())
        expected = queried(partitions, **params)
    query_by_partition()

    assert queried(partitions, **params) == expected
    if params == {"TableName": "sessions", **U1}:  # the partition, in its sort key's order
        items = expected[0]["Items"]
        assert [(i["userId"]["S"], i["sessionId"]["S"]) for i in items] == [
            ("u1", "s1"),
            ("u1", "s2"),
            ("u1", "s3"),
            ("u1", "s5"),
        ]


def test_a_table_query_reads_the_partition_not_the_whole_table(
    partitions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_item = table_models.Table.all_items
    sorted_whole = [0]

    def counted(self: Any) -> Any:
        sorted_whole[0] += 1
        return every_item(self)

    monkeypatch.setattr(table_models.Table, "all_items", counted)
    query_by_partition()
    partitions.query(TableName="sessions", **U1)
    assert sorted_whole == [0]
    with monkeypatch.context() as moto_alone:  # moto's own sorts the whole table for it
        moto_alone.setattr(table_models.Table, "query", moto_query())
        partitions.query(TableName="sessions", **U1)
    assert sorted_whole == [1]


def test_the_emulator_server_queries_by_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_models.Table, "query", moto_query())
    with moto_server():
        assert getattr(table_models.Table.query, "_by_partition", False)
    query_by_partition()
    once = table_models.Table.query
    query_by_partition()
    assert table_models.Table.query is once
