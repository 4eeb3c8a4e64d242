"""Decoding DynamoDB wire-format items into the snapshot frame."""

from decimal import Decimal

import pandas as pd
import pytest
from boto3.dynamodb.types import TypeSerializer

from cleanup_pipeline.core.decisions import REQUIRED_COLUMNS, SNAPSHOT_DTYPES
from cleanup_pipeline.core.wire import PROJECTED_ATTRIBUTES, decode_items
from tests.support.items import ABSENT, AS_OF, DAY, NULL, n, s, user


def decoded_row(item: dict) -> pd.Series:
    return decode_items([item]).iloc[0]


def test_empty_input_gives_empty_snapshot_with_schema():
    frame = decode_items([])
    assert len(frame) == 0
    assert tuple(frame.columns) == REQUIRED_COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in SNAPSHOT_DTYPES.items()
    }


def test_dtypes_match_schema():
    frame = decode_items([user("a"), user("b", lastVisitAt=s("x"))])
    assert tuple(frame.columns) == REQUIRED_COLUMNS
    for column, dtype in SNAPSHOT_DTYPES.items():
        expected = pd.Series(dtype=dtype).dtype
        assert frame[column].dtype.name == expected.name, column
        if column != "malformed":
            assert frame[column].dtype == expected, column


def test_items_serialised_by_boto3_decode_to_exact_values():
    serializer = TypeSerializer()
    python_item = {
        "id": "user-1",
        "email": "jane@example.com",
        "lastVisitAt": Decimal(1_749_999_999_999),
        "accountDeletionEmailSentAt": Decimal(1_700_000_000_001),
        "freeTrialEnd": Decimal(9_007_199_254_740_991),  # 2**53 - 1: largest exact
        "lifeTimeDeal": False,
        "subscription": {"id": "s1", "planId": "p", "status": "canceled", "endsAt": Decimal(5)},
        "unrelated": {"nested": ["x"]},
    }
    item = {key: serializer.serialize(value) for key, value in python_item.items()}
    row = decoded_row(item)
    assert row["id"] == "user-1"
    assert bool(row["has_email"]) is True
    assert row["email_masked"] == "j***@example.com"
    assert row["lastVisitAt"] == 1_749_999_999_999
    assert row["accountDeletionEmailSentAt"] == 1_700_000_000_001
    assert row["freeTrialEnd"] == 9_007_199_254_740_991
    assert bool(row["lifeTimeDeal"]) is False
    assert bool(row["has_subscription"]) is True
    assert row["subscription_endsAt"] == 5
    assert pd.isna(row["malformed"])


def test_optional_attributes_absent_or_null_are_missing():
    for value in (ABSENT, NULL):
        row = decoded_row(
            user(
                accountDeletionEmailSentAt=value,
                freeTrialEnd=value,
                lifeTimeDeal=value,
                subscription=value,
            )
        )
        assert pd.isna(row["accountDeletionEmailSentAt"])
        assert pd.isna(row["freeTrialEnd"])
        assert pd.isna(row["subscription_endsAt"])
        assert bool(row["lifeTimeDeal"]) is False
        assert bool(row["has_subscription"]) is False
        assert pd.isna(row["malformed"])


def test_subscription_map_without_ends_at():
    row = decoded_row(user(subscription={"M": {"status": s("active")}}))
    assert bool(row["has_subscription"]) is True
    assert pd.isna(row["subscription_endsAt"])
    assert pd.isna(row["malformed"])


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"id": n(1)}, "id: not a string"),
        ({"email": {"BOOL": True}}, "email: not a string"),
        ({"lastVisitAt": s("1700000000000")}, "lastVisitAt: not a number"),
        (
            {"accountDeletionEmailSentAt": {"BOOL": True}},
            "accountDeletionEmailSentAt: not a number",
        ),
        ({"freeTrialEnd": {"M": {}}}, "freeTrialEnd: not a number"),
        ({"subscription": s("x")}, "subscription: not a map"),
        ({"subscription": {"M": {"endsAt": s("x")}}}, "subscription.endsAt: not a number"),
    ],
)
def test_wrong_types_are_flagged_not_raised(attributes, reason):
    row = decoded_row(user(**attributes))
    assert row["malformed"] == reason


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "9007199254740993", "abc", "NaN", "Infinity"])
def test_unusable_numbers_are_flagged(raw):
    frame = decode_items([user("bad", lastVisitAt=n(raw)), user("good")])
    assert pd.isna(frame["lastVisitAt"].iloc[0])
    assert str(frame["malformed"].iloc[0]).startswith("lastVisitAt")
    assert frame["lastVisitAt"].iloc[1] == AS_OF - 10 * DAY
    assert pd.isna(frame["malformed"].iloc[1])


def test_number_forms_decode_to_the_same_milliseconds():
    frame = decode_items(
        [
            user("a", lastVisitAt=n("1700000000000")),
            user("b", lastVisitAt=n("1.7E12")),
            user("c", lastVisitAt=n("1700000000000.0")),
        ]
    )
    assert list(frame["lastVisitAt"]) == [1_700_000_000_000] * 3
    assert frame["malformed"].isna().all()


def test_first_error_in_attribute_order_is_reported():
    row = decoded_row(user(email=n(1), lastVisitAt=s("x"), subscription=s("y")))
    assert row["malformed"] == "email: not a string"


def test_email_is_never_kept_in_clear():
    frame = decode_items([user(email=s("very.private@example.com")), user("b", email=s(""))])
    assert "very.private" not in frame.to_csv()
    assert list(frame["has_email"]) == [True, False]
    assert frame["email_masked"].iloc[0] == "v***@example.com"
    assert pd.isna(frame["email_masked"].iloc[1])


def test_unprojected_attributes_are_ignored():
    row = decoded_row(user(extra={"M": {"anything": {"B": b"\x00"}}}, id_alias=n(1)))
    assert pd.isna(row["malformed"])
    assert "email" in PROJECTED_ATTRIBUTES and "extra" not in PROJECTED_ATTRIBUTES


def test_items_as_returned_by_a_low_level_scan(aws):
    clients, settings = aws
    ddb = clients.dynamodb
    items = [
        user("a", lastVisitAt=n(AS_OF - 100 * DAY), lifeTimeDeal=NULL),
        user("b", subscription={"M": {"endsAt": n(AS_OF + DAY)}}, freeTrialEnd=n(AS_OF)),
        user("c", lastVisitAt=s("oops")),
    ]
    for item in items:
        ddb.put_item(TableName=settings.users_table, Item=item)
    names = {f"#p{i}": name for i, name in enumerate(PROJECTED_ATTRIBUTES)}
    scanned = ddb.scan(
        TableName=settings.users_table,
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
    )["Items"]
    frame = decode_items(scanned).set_index("id").sort_index()
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["a", "lastVisitAt"] == AS_OF - 100 * DAY
    assert bool(frame.loc["a", "lifeTimeDeal"]) is False
    assert frame.loc["b", "subscription_endsAt"] == AS_OF + DAY
    assert frame.loc["b", "freeTrialEnd"] == AS_OF
    assert frame.loc["c", "malformed"] == "lastVisitAt: not a number"
    assert frame["malformed"].isna().sum() == 2
