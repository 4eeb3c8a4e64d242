"""Consistent BatchGetItem: DynamoDB may answer only part of a request; the rest is asked again."""

from typing import Any

import pytest

from cleanup_pipeline.aws import dynamodb
from cleanup_pipeline.aws.dynamodb import consistent_batch_get, read_by_id

PROJECTION = {"ProjectionExpression": "#id", "ExpressionAttributeNames": {"#id": "id"}}


class PartialAnswers:
    """Passes each BatchGetItem to moto with only the first `answered` keys, returning the others
    as UnprocessedKeys, as DynamoDB does under load; `times` such answers, then full ones."""

    def __init__(self, client: Any, answered: int, times: int) -> None:
        self.client, self.answered, self.times = client, answered, times
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.requests.append(len(keys))
        if self.times == 0:
            return self.client.batch_get_item(RequestItems=RequestItems)
        self.times -= 1
        head, rest = keys[: self.answered], keys[self.answered :]
        response = self.client.batch_get_item(RequestItems={table: {**request, "Keys": head}})
        response["UnprocessedKeys"] = {table: {**request, "Keys": rest}} if rest else {}
        return response


@pytest.fixture
def emails(aws) -> tuple[Any, str]:
    clients, settings = aws
    for n in range(250):
        clients.dynamodb.put_item(
            TableName=settings.emails_table, Item={"id": {"S": f"user{n}@example.com"}}
        )
    return clients.dynamodb, settings.emails_table


def test_unprocessed_keys_are_asked_again_until_every_item_is_read(emails, monkeypatch):
    client, table = emails
    monkeypatch.setattr(dynamodb.time, "sleep", lambda _: None)
    partial = PartialAnswers(client, answered=30, times=3)
    wanted = [f"user{n}@example.com" for n in range(250)] + ["absent@example.com"]

    found = [item["id"]["S"] for item in consistent_batch_get(partial, table, wanted, PROJECTION)]

    assert sorted(found) == sorted(wanted[:250])
    # 3 chunks of 100/100/51; the first chunk answered 30 keys three times, then the last 10.
    assert partial.requests == [100, 70, 40, 10, 100, 51]


def test_keys_still_unprocessed_after_every_attempt_raise(emails, monkeypatch):
    client, table = emails
    monkeypatch.setattr(dynamodb.time, "sleep", lambda _: None)
    partial = PartialAnswers(client, answered=1, times=1_000)

    with pytest.raises(RuntimeError, match="left 90 keys unread"):
        list(
            consistent_batch_get(
                partial, table, [f"user{n}@example.com" for n in range(100)], PROJECTION
            )
        )


def test_read_by_id_returns_only_the_asked_attributes_of_each_found_user(aws):
    clients, settings = aws
    table = settings.users_table
    for user_id in ("u1", "u2"):
        clients.dynamodb.put_item(
            TableName=table,
            # `name` is a reserved word: a projection naming it bare would be refused.
            Item={"id": {"S": user_id}, "name": {"S": user_id.upper()}, "email": {"S": "x@y.z"}},
        )

    found = read_by_id(clients.dynamodb, table, ["u2", "u1", "u2", "absent"], ["name"])
    whole = read_by_id(clients.dynamodb, table, ["u1"])

    assert found == {
        "u1": {"id": {"S": "u1"}, "name": {"S": "U1"}},
        "u2": {"id": {"S": "u2"}, "name": {"S": "U2"}},
    }
    assert whole["u1"]["email"] == {"S": "x@y.z"}
