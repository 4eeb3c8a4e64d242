"""Reading AWS state back: items, object keys, emails SES accepted, and a dump of everything
the job may touch."""

import os
from dataclasses import dataclass
from typing import Any

import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.ses.models import ses_backends

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings
from tests.support.items import Item, s


def scan_all(dynamodb: Any, table: str) -> dict[str, Item]:
    """Every item of `table`, by id, read consistently."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {item["id"]["S"]: item for page in pages for item in page["Items"]}


def ordered(items: list[Item]) -> list[Item]:
    """`items` in an order that depends on their content alone, to compare tables."""
    return sorted(items, key=lambda i: sorted((k, str(v)) for k, v in i.items()))


def table_items(dynamodb: Any, table: str) -> list[Item]:
    """Every item of a small `table` (one Scan), ordered."""
    return ordered(dynamodb.scan(TableName=table)["Items"])


def get_item(dynamodb: Any, table: str, key: str) -> Item | None:
    return dynamodb.get_item(TableName=table, Key={"id": s(key)}, ConsistentRead=True).get("Item")


def keys_under(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """The keys of `bucket` under `prefix`, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def moto_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def put_objects(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def put_files(s3: Any, bucket: str, prefix: str, count: int) -> list[str]:
    """`count` objects under `prefix`; written straight into moto's S3 backend (the client
    would take seconds for a thousand), the first one through the client."""
    keys = [f"{prefix}file-{i:05d}.txt" for i in range(count)]
    backend = s3_backends[moto_account()]["aws"]
    put_objects(s3, bucket, keys[:1])
    for key in keys[1:]:
        backend.put_object(bucket, key, b"x")
    return keys


def sent_messages(region: str = "us-east-1") -> list[Any]:
    """Messages SES (v1 and v2) accepted inside the in-process mock."""
    return list(ses_backends[moto_account()][region].sent_messages)


def sent_to(endpoint: str | None = None) -> list[str]:
    """Recipients of every email accepted: by in-process moto, or by the moto server at
    `endpoint`."""
    if endpoint is None:
        return [to for m in sent_messages() for to in m.destinations["ToAddresses"]]
    # moto serialises its whole state (every table and object) for this answer: on a loaded
    # machine that outlasts a short timeout.
    data = requests.get(f"{endpoint}/moto-api/data.json", timeout=120).json()
    messages = data.get("ses", {}).get("Message", [])
    return [to for m in messages for to in m["destinations"]["ToAddresses"]]


@dataclass(frozen=True)
class AwsState:
    """Everything the job may touch, as read at one moment."""

    users: dict[str, Item]
    keys: set[str]
    features: dict[str, Item]
    scoreboards: dict[str, Item]
    emails: dict[str, Item]
    sent_to: list[str]


def read_state(clients: AwsClients, settings: Settings) -> AwsState:
    ddb = clients.dynamodb
    return AwsState(
        users=scan_all(ddb, settings.users_table),
        keys=set(keys_under(clients.s3, settings.public_bucket_name)),
        features=scan_all(ddb, settings.features_table),
        scoreboards=scan_all(ddb, settings.scoreboards_table),
        emails=scan_all(ddb, settings.emails_table),
        sent_to=sent_to(),
    )
