"""Building blocks for the AWS tests: wire-format items, seeded objects, recorded calls."""

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.ses.models import ses_backends

from cleanup_pipeline.actions.cascade import CascadeContext, RunReferences, delete_accounts
from cleanup_pipeline.actions.outcomes import Outcomes
from cleanup_pipeline.aws import references
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.settings import Settings

DAY = 86_400_000
Item = dict[str, dict[str, Any]]


def now_ms() -> int:
    return int(time.time() * 1000)


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def user_item(
    user_id: str,
    *,
    last_visit: int,
    sent_at: int | None = None,
    email: str | None = None,
    **extra: dict[str, Any],
) -> Item:
    item: Item = {
        "id": s(user_id),
        "email": s(email if email is not None else f"{user_id}@example.com"),
        "lastVisitAt": n(last_visit),
    }
    if sent_at is not None:
        item["accountDeletionEmailSentAt"] = n(sent_at)
    item.update(extra)
    return item


def delete_candidate(user_id: str, as_of: int, **extra: dict[str, Any]) -> Item:
    """Warned 40 days ago after 100 days away: past the 30-day grace period."""
    return user_item(user_id, last_visit=as_of - 100 * DAY, sent_at=as_of - 40 * DAY, **extra)


def notify_candidate(user_id: str, as_of: int, **extra: dict[str, Any]) -> Item:
    """Away for 61 days, never warned."""
    return user_item(user_id, last_visit=as_of - 61 * DAY, **extra)


def active_user(user_id: str, as_of: int, **extra: dict[str, Any]) -> Item:
    return user_item(user_id, last_visit=as_of - DAY, **extra)


def put_items(dynamodb: Any, table: str, items: Iterable[Item]) -> None:
    items = list(items)
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")


def get_item(dynamodb: Any, table: str, key: str) -> Item | None:
    return dynamodb.get_item(TableName=table, Key={"id": s(key)}, ConsistentRead=True).get("Item")


def scan_all(dynamodb: Any, table: str) -> list[Item]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def moto_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def put_files(s3: Any, bucket: str, prefix: str, count: int) -> list[str]:
    """`count` objects under `prefix`; written straight into moto's S3 backend (the client
    would take seconds for a thousand), the first one through the client."""
    keys = [f"{prefix}file-{i:05d}.txt" for i in range(count)]
    backend = s3_backends[moto_account()]["aws"]
    for i, key in enumerate(keys):
        if i == 0:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        else:
            backend.put_object(bucket, key, b"x")
    return keys


def keys_under(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def feature(feature_id: str, proposed_by: str | None = None, **extra: dict[str, Any]) -> Item:
    item: Item = {"id": s(feature_id), **extra}
    if proposed_by is not None:
        item["proposedBy"] = s(proposed_by)
    return item


def board_entry(user_id: str, total: int) -> dict[str, Any]:
    """A scoreboard entry as the app stores it: the user's id plus other fields."""
    return {
        "M": {
            "id": s(user_id),
            "name": s(f"Name of {user_id}"),
            "total": n(total),
            "stats": {"M": {"days": n(total % 7), "tags": {"L": [s("a"), s("b")]}}},
        }
    }


def scoreboard(period: str, entries: list[dict[str, Any]]) -> Item:
    return {"id": s(period), "users": {"L": entries}, "updatedAt": n(1_700_000_000_000)}


def sent_messages(region: str = "us-east-1") -> list[Any]:
    """Messages SES (v1 and v2) accepted inside the in-process mock."""
    return list(ses_backends[moto_account()][region].sent_messages)


def client_error(code: str, operation: str, message: str = "refused by the test") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def record_params(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every call's API parameters for `operation` (e.g. "DeleteObjects"), in call order."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", handler)
    return calls


class Fault:
    """Makes `operation` raise `error()` for the calls whose parameters match `predicate`,
    until removed; `calls` holds the parameters of the calls made to fail."""

    def __init__(
        self,
        client: Any,
        operation: str,
        predicate: Callable[[dict[str, Any]], bool],
        error: Callable[[], BaseException],
    ) -> None:
        self.calls: list[dict[str, Any]] = []
        self._predicate, self._error = predicate, error
        self._events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        self._event = f"before-parameter-build.{service}.{operation}"
        self._events.register(self._event, self._handler)

    def _handler(self, params: dict[str, Any], **_: Any) -> None:
        if self._predicate(params):
            self.calls.append(dict(params))
            raise self._error()

    def remove(self) -> None:
        self._events.unregister(self._event, self._handler)


def fail_when(
    client: Any,
    operation: str,
    predicate: Callable[[dict[str, Any]], bool],
    error: Callable[[], BaseException],
) -> Fault:
    return Fault(client, operation, predicate, error)


class FailureLog:
    """An `on_failure` hook that remembers what it received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, BaseException]] = []

    def __call__(self, user_id: str, step: str, error: BaseException) -> None:
        self.calls.append((user_id, step, error))


def cascade_context(
    clients: AwsClients,
    settings: Settings,
    as_of: int,
    on_failure: Callable[[str, str, BaseException], None] | None = None,
) -> CascadeContext:
    return CascadeContext(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        settings=settings,
        as_of=as_of,
        policy=Policy(),
        on_failure=on_failure,
    )


def read_references(clients: AwsClients, settings: Settings, user_ids: list[str]) -> RunReferences:
    """What the job reads once per run for its delete candidates."""
    return RunReferences(
        features=references.features_by_proposer(
            clients.dynamodb, settings.features_table, user_ids
        ),
    )


def run_cascade(
    clients: AwsClients,
    settings: Settings,
    as_of: int,
    user_ids: list[str],
    *,
    on_failure: Callable[[str, str, BaseException], None] | None = None,
    before_final_delete: Callable[[], None] | None = None,
) -> Outcomes:
    """The cascade as the job runs one batch: references read for the candidates, then the
    cascade's entry point. `before_final_delete` runs once, right before the first DeleteItem of
    a user item (the cascade's last step)."""
    ctx = cascade_context(clients, settings, as_of, on_failure)
    refs = read_references(clients, settings, user_ids)
    if before_final_delete is None:
        return delete_accounts(ctx, user_ids, refs.features)
    events, event, done = clients.dynamodb.meta.events, "before-call.dynamodb.DeleteItem", []

    def once(**_: Any) -> None:
        if not done:
            done.append(True)
            before_final_delete()

    events.register(event, once)
    try:
        return delete_accounts(ctx, user_ids, refs.features)
    finally:
        events.unregister(event, once)


def outcome_of(outcomes: Outcomes, user_id: str) -> dict[str, Any]:
    rows = [row for row in outcomes.rows if row["id"] == user_id]
    assert len(rows) == 1, rows
    return rows[0]
