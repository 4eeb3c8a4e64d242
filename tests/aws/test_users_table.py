"""Reading the users table: the parallel scan snapshot and the consistent re-read."""

import pandas as pd
import pytest

from cleanup_pipeline.actions.recheck import email_of, recheck
from cleanup_pipeline.aws.users_table import read_users, scan_snapshot
from cleanup_pipeline.core.decisions import DELETE, NOTIFY, SNAPSHOT_DTYPES, Policy
from cleanup_pipeline.core.wire import PROJECTED_ATTRIBUTES
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import record_params
from tests.support.items import (
    DAY,
    active_user,
    delete_candidate,
    n,
    notify_candidate,
    now_ms,
    s,
    user_item,
)

EXTRA = {
    "name": s("A name the job must not read"),
    "preferences": {"M": {"theme": s("dark"), "sizes": {"L": [n(1), n(2)]}}},
    "avatar": {"B": b"\x00\x01" * 50},
}


def seed_users(clients, settings, count, as_of):
    items = [
        user_item(
            f"user-{i:04d}",
            last_visit=as_of - i * DAY,
            email=f"person{i}@example.com",
            **({"accountDeletionEmailSentAt": n(as_of - DAY)} if i % 5 == 0 else {}),
            **EXTRA,
        )
        for i in range(count)
    ]
    batch_write(clients.dynamodb, settings.users_table, items)
    return items


@pytest.mark.parametrize(("segments", "page_limit"), [(1, None), (4, None), (4, 17)])
def test_parallel_scan_returns_every_user_once_with_the_projection(aws, segments, page_limit):
    clients, settings = aws
    as_of = now_ms()
    seed_users(clients, settings, 250, as_of)
    scans = record_params(clients.dynamodb, "Scan")
    if page_limit is not None:

        def small_pages(params, **_):
            params["Limit"] = page_limit

        clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.Scan", small_pages)

    snapshot = scan_snapshot(clients.dynamodb, settings.users_table, segments=segments)

    assert len(snapshot) == 250
    assert sorted(snapshot["id"]) == [f"user-{i:04d}" for i in range(250)]
    assert snapshot["id"].is_unique
    assert {column: str(dtype) for column, dtype in snapshot.dtypes.items()} == {
        column: str(pd.Series(dtype=dtype).dtype) for column, dtype in SNAPSHOT_DTYPES.items()
    }
    assert snapshot["malformed"].isna().all()
    row = snapshot.set_index("id").loc["user-0010"]
    assert row["lastVisitAt"] == as_of - 10 * DAY
    assert row["accountDeletionEmailSentAt"] == as_of - DAY
    assert row["email_masked"] == "p***@example.com"
    assert "person10@example.com" not in snapshot.to_csv()

    assert {(c.get("Segment"), c.get("TotalSegments")) for c in scans} == {
        (segment, segments) for segment in range(segments)
    }
    if page_limit is not None:
        assert len(scans) > segments
    for call in scans:
        names = call["ExpressionAttributeNames"]
        projected = [names[p.strip()] for p in call["ProjectionExpression"].split(",")]
        assert sorted(projected) == sorted(PROJECTED_ATTRIBUTES)
        assert "name" not in projected


def test_scan_of_an_empty_table(aws):
    clients, settings = aws
    snapshot = scan_snapshot(clients.dynamodb, settings.users_table, segments=4)
    assert snapshot.empty
    assert list(snapshot.columns) == list(SNAPSHOT_DTYPES)


def test_scan_flags_malformed_items_without_failing(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(
        clients.dynamodb,
        settings.users_table,
        [
            active_user("good", as_of),
            {"id": s("text-visit"), "email": s("t@example.com"), "lastVisitAt": s("yesterday")},
            {"id": s("no-email"), "lastVisitAt": n(as_of)},
        ],
    )
    snapshot = scan_snapshot(clients.dynamodb, settings.users_table).set_index("id")
    assert snapshot.loc["text-visit", "malformed"] == "lastVisitAt: not a number"
    assert pd.isna(snapshot.loc["good", "malformed"])
    assert not snapshot.loc["no-email", "has_email"]


def test_read_users_is_consistent_projected_and_chunked(aws):
    clients, settings = aws
    as_of = now_ms()
    seed_users(clients, settings, 130, as_of)
    gets = record_params(clients.dynamodb, "BatchGetItem")
    wanted = [f"user-{i:04d}" for i in range(130)] + ["nobody", "user-0001"]

    found = read_users(clients.dynamodb, settings.users_table, wanted)

    assert sorted(found) == [f"user-{i:04d}" for i in range(130)]
    assert found["user-0003"]["email"] == s("person3@example.com")
    assert all(set(item) <= set(PROJECTED_ATTRIBUTES) for item in found.values())
    assert all("name" not in item for item in found.values())
    sizes = []
    for call in gets:
        request = call["RequestItems"][settings.users_table]
        assert request["ConsistentRead"] is True
        sizes.append(len(request["Keys"]))
    assert sizes == [100, 31]


def test_recheck_keeps_only_users_still_in_the_decision(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(
        clients.dynamodb,
        settings.users_table,
        [
            delete_candidate("d1", as_of),
            notify_candidate("n1", as_of),
            delete_candidate("trial", as_of, freeTrialEnd=n(as_of + DAY)),
        ],
    )

    kept, dropped = recheck(
        clients.dynamodb,
        settings.users_table,
        ["d1", "n1", "trial", "gone"],
        DELETE,
        as_of,
        now_ms(),
        Policy(),
    )

    assert list(kept) == ["d1"]
    assert email_of(kept["d1"]) == "d1@example.com"
    assert dropped == {
        "gone": "user no longer exists",
        "n1": "now notify (inactive over 60 days)",
        "trial": "now exempt (trial)",
    }
    kept, _ = recheck(
        clients.dynamodb, settings.users_table, ["d1", "n1"], NOTIFY, as_of, now_ms(), Policy()
    )
    assert list(kept) == ["n1"]
