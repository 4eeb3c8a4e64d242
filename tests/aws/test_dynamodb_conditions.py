"""unchanged_since: the condition every write to a user item carries."""

import itertools
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cleanup_pipeline.aws.dynamodb import unchanged_since
from tests.support.items import AS_OF, DAY, NULL, n, s, user


def readable(item: dict) -> tuple[list[str], dict]:
    """The condition's clauses with attribute placeholders replaced by their names, and its
    values."""
    kwargs = unchanged_since(item).as_kwargs()
    names = kwargs.get("ExpressionAttributeNames", {})
    values = kwargs.get("ExpressionAttributeValues", {})
    expression = re.sub(r"#n\d+", lambda m: names[m.group(0)], kwargs["ConditionExpression"])
    expression = re.sub(r":v\d+", lambda m: repr(values[m.group(0)]), expression)
    return expression.split(" AND "), kwargs


def test_absent_attributes_must_stay_absent():
    clauses, _ = readable({"id": s("u1"), "lastVisitAt": n(5)})
    assert clauses == [
        "attribute_exists(id)",
        "lastVisitAt = {'N': '5'}",
        "attribute_not_exists(accountDeletionEmailSentAt)",
        "attribute_not_exists(freeTrialEnd)",
        "attribute_not_exists(lifeTimeDeal)",
        "attribute_not_exists(subscription)",
    ]


def test_present_attributes_must_stay_equal():
    item = user(
        accountDeletionEmailSentAt=n(7),
        freeTrialEnd=n(3),
        lifeTimeDeal={"BOOL": False},
        subscription={"M": {"endsAt": n(9), "status": s("canceled")}},
    )
    clauses, _ = readable(item)
    assert clauses == [
        "attribute_exists(id)",
        f"lastVisitAt = {{'N': '{AS_OF - 10 * DAY}'}}",
        "accountDeletionEmailSentAt = {'N': '7'}",
        "freeTrialEnd = {'N': '3'}",
        "lifeTimeDeal = {'BOOL': False}",
        "subscription.endsAt = {'N': '9'}",
    ]


def test_null_attributes_must_stay_null():
    clauses, _ = readable(user(lifeTimeDeal=NULL, subscription=NULL, freeTrialEnd=NULL))
    assert "attribute_type(lifeTimeDeal, {'S': 'NULL'})" in clauses
    assert "attribute_type(subscription, {'S': 'NULL'})" in clauses
    assert "attribute_type(freeTrialEnd, {'S': 'NULL'})" in clauses


def test_subscription_map_without_ends_at_requires_it_to_stay_absent():
    clauses, _ = readable(user(subscription={"M": {"status": s("canceled")}}))
    assert clauses[-1] == "attribute_not_exists(subscription.endsAt)"


def test_every_placeholder_is_used():
    # DynamoDB rejects a request that defines a name or value its expression does not use.
    item = user(lifeTimeDeal=NULL, subscription={"M": {"endsAt": n(1)}}, freeTrialEnd=n(2))
    kwargs = unchanged_since(item).as_kwargs()
    used = set(re.findall(r"[#:][nv]\d+", kwargs["ConditionExpression"]))
    assert used == {*kwargs["ExpressionAttributeNames"], *kwargs["ExpressionAttributeValues"]}


# --- against DynamoDB (moto) ----------------------------------------------------------------


EXPIRED = {"M": {"id": s("sub_1"), "status": s("canceled"), "endsAt": n(AS_OF - DAY)}}


def delete_candidate(**attributes) -> dict:
    return user(
        "gone",
        **{
            "lastVisitAt": n(AS_OF - 100 * DAY),
            "accountDeletionEmailSentAt": n(AS_OF - 35 * DAY),
            "subscription": EXPIRED,
            "lifeTimeDeal": {"BOOL": False},
            **attributes,
        },
    )


_tables = itertools.count()


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client(
            "dynamodb",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def aws(dynamodb) -> tuple[Any, str]:
    """A fresh users table (key `id`, S) in moto."""
    table = f"users-{next(_tables)}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb, table


def put(aws, item: dict) -> None:
    client, table = aws
    client.put_item(TableName=table, Item=item)


def conditional_delete(aws, item: dict) -> None:
    client, table = aws
    client.delete_item(TableName=table, Key={"id": item["id"]}, **unchanged_since(item).as_kwargs())


def stored(aws, item: dict) -> dict | None:
    client, table = aws
    return client.get_item(TableName=table, Key={"id": item["id"]}, ConsistentRead=True).get("Item")


def change(aws, item: dict, expression: str, values: dict | None = None, names=None) -> None:
    client, table = aws
    client.update_item(
        TableName=table,
        Key={"id": item["id"]},
        UpdateExpression=expression,
        **({"ExpressionAttributeValues": values} if values else {}),
        **({"ExpressionAttributeNames": names} if names else {}),
    )


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(delete_candidate(), id="expired subscription, lifetime false"),
        pytest.param(
            delete_candidate(subscription=NULL, lifeTimeDeal=NULL, freeTrialEnd=NULL),
            id="nulls",
        ),
        pytest.param(
            user("plain", lastVisitAt=n(AS_OF - 100 * DAY)),
            id="optional attributes absent",
        ),
        pytest.param(
            delete_candidate(freeTrialEnd=n(AS_OF - 50 * DAY), lifeTimeDeal=n(0)),
            id="past trial, lifetime 0",
        ),
    ],
)
def test_delete_succeeds_on_unchanged_item(aws, item):
    put(aws, {**item, "otherField": s("ignored")})
    conditional_delete(aws, item)
    assert stored(aws, item) is None


@pytest.mark.parametrize(
    ("item", "expression", "values"),
    [
        pytest.param(
            delete_candidate(),
            "SET lastVisitAt = :v",
            {":v": n(AS_OF)},
            id="came back",
        ),
        pytest.param(
            delete_candidate(),
            "SET subscription.endsAt = :v",
            {":v": n(AS_OF + 30 * DAY)},
            id="subscription renewed",
        ),
        pytest.param(
            delete_candidate(),
            "REMOVE subscription.endsAt",
            None,
            id="subscription endsAt removed",
        ),
        pytest.param(
            delete_candidate(),
            "SET subscription = :v",
            {":v": {"M": {"id": s("sub_2"), "status": s("active")}}},
            id="new subscription",
        ),
        pytest.param(
            delete_candidate(),
            "SET lifeTimeDeal = :v",
            {":v": {"BOOL": True}},
            id="lifetime deal",
        ),
        pytest.param(
            delete_candidate(lifeTimeDeal=NULL),
            "SET lifeTimeDeal = :v",
            {":v": {"BOOL": True}},
            id="lifetime deal from null",
        ),
        pytest.param(
            delete_candidate(subscription=NULL),
            "SET subscription = :v",
            {":v": {"M": {"status": s("active")}}},
            id="subscription from null",
        ),
        pytest.param(
            user("plain", lastVisitAt=n(AS_OF - 100 * DAY)),
            "SET lifeTimeDeal = :v",
            {":v": n(1)},
            id="lifetime deal added",
        ),
        pytest.param(
            user("plain", lastVisitAt=n(AS_OF - 100 * DAY)),
            "SET subscription = :v",
            {":v": {"M": {}}},
            id="subscription added",
        ),
        pytest.param(
            delete_candidate(),
            "SET freeTrialEnd = :v",
            {":v": n(AS_OF + 14 * DAY)},
            id="trial started",
        ),
        pytest.param(
            delete_candidate(),
            "SET accountDeletionEmailSentAt = :v",
            {":v": n(AS_OF)},
            id="warned again",
        ),
    ],
)
def test_delete_fails_after_a_decision_attribute_changed(aws, item, expression, values):
    put(aws, item)
    change(aws, item, expression, values)
    with pytest.raises(ClientError) as raised:
        conditional_delete(aws, item)
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert stored(aws, item) is not None


def test_delete_fails_when_the_item_is_gone(aws):
    item = delete_candidate()
    with pytest.raises(ClientError) as raised:
        conditional_delete(aws, item)
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_unrelated_changes_do_not_block_the_delete(aws):
    item = delete_candidate()
    put(aws, item)
    change(
        aws,
        item,
        "SET email = :e, subscription.#st = :st",
        {":e": s("new@example.com"), ":st": s("past_due")},
        {"#st": "status"},
    )
    conditional_delete(aws, item)
    assert stored(aws, item) is None
