"""The deletion cascade against moto: everything of the user goes, nothing of anyone else."""

import boto3
import pytest

from cleanup_pipeline.actions.cascade import (
    MAX_DELETE_ATTEMPTS,
    archive_emails,
    confirm_candidates,
    delete_files,
    prune_scoreboards,
    record_batch,
    unlink_features,
)
from cleanup_pipeline.actions.outcomes import DELETED, KEPT, SKIPPED
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import record_params
from tests.support.aws_state import get_item, keys_under, put_files, scan_all
from tests.support.cascade import cascade_context, outcome_of, run_cascade
from tests.support.items import (
    DAY,
    active_user,
    board_entry,
    delete_candidate,
    feature,
    n,
    now_ms,
    s,
    scoreboard,
)
from tests.support.recovery_world import journals, ledger, restore


def test_cascade_removes_the_user_and_leaves_neighbours_exactly_as_they_were(aws):
    clients, settings = aws
    db, bucket, as_of = clients.dynamodb, settings.public_bucket_name, now_ms()
    batch_write(
        db,
        settings.users_table,
        [
            delete_candidate("u1", as_of, name=s("Ann")),
            delete_candidate("u2", as_of, email="kept@example.com"),
            active_user("u1x", as_of),
            active_user("u10", as_of),
        ],
    )
    put_files(clients.s3, bucket, "u1/", 1001)
    put_files(clients.s3, bucket, "u1/nested/deeper/", 3)
    put_files(clients.s3, bucket, "u2/", 2)
    kept_keys = [
        *put_files(clients.s3, bucket, "u1x/", 2),
        *put_files(clients.s3, bucket, "u10/", 2),
        *put_files(clients.s3, bucket, "other/u1/", 1),
    ]
    clients.s3.put_object(Bucket=bucket, Key="u1", Body=b"not in the folder")
    kept_keys.append("u1")

    features = [
        feature("f1", "u1", title=s("Dark mode"), votes=n(12)),
        feature("f2", "u1", title=s("Export"), tags={"SS": ["x", "y"]}),
        feature("f3", "u10", title=s("Import"), votes=n(3)),
        feature("f4", title=s("Nobody's")),
        feature("f5", "u2"),
    ]
    batch_write(db, settings.features_table, features)
    week = [
        board_entry("a", 9),
        board_entry("u1", 8),
        board_entry("b", 7),
        board_entry("u1x", 6),
        board_entry("u1", 5),
        board_entry("u10", 4),
        board_entry("u2", 3),
    ]
    month = [board_entry("u1", 1), board_entry("c", 2)]
    batch_write(
        db, settings.scoreboards_table, [scoreboard("week", week), scoreboard("month", month)]
    )
    existing_email = {
        "id": s("kept@example.com"),
        "source": s("signup"),
        "createdAt": n(1_600_000_000_000),
    }
    batch_write(db, settings.emails_table, [existing_email])

    deletes = record_params(clients.s3, "DeleteObjects")
    transactions = record_params(db, "TransactWriteItems")
    outcomes = run_cascade(clients, settings, as_of, ["u1", "u2"])

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert outcome_of(outcomes, "u2")["outcome"] == DELETED
    assert len(outcomes.rows) == 2

    # Files: the whole folder (more than one listing page) gone, neighbours untouched.
    assert keys_under(clients.s3, bucket, "u1/") == []
    assert keys_under(clients.s3, bucket, "u2/") == []
    assert keys_under(clients.s3, bucket) == sorted(kept_keys)
    deleted_keys = [o["Key"] for call in deletes for o in call["Delete"]["Objects"]]
    assert len(deleted_keys) == len(set(deleted_keys)) == 1001 + 3 + 2
    assert all(len(call["Delete"]["Objects"]) <= 1000 for call in deletes)
    assert len(deletes) == 2

    # Features: the user's lose proposedBy only; the others are unchanged.
    after = scan_all(db, settings.features_table)
    expected = {f["id"]["S"]: dict(f) for f in features}
    for fid in ("f1", "f2", "f5"):
        expected[fid].pop("proposedBy")
    assert after == expected

    # Scoreboards: exactly the user's entries removed, order and fields of the rest kept.
    boards = scan_all(db, settings.scoreboards_table)
    assert boards["week"] == scoreboard("week", [week[0], week[2], week[3], week[5]])
    assert boards["month"] == scoreboard("month", [month[1]])

    # Emails: written where missing, an existing item (with more attributes) left as it was.
    emails = scan_all(db, settings.emails_table)
    assert emails == {
        "u1@example.com": {"id": s("u1@example.com")},
        "kept@example.com": existing_email,
    }
    # One transaction of both, cancelled by the kept address; then the missing one alone.
    assert [
        [a["Put"]["Item"]["id"]["S"] for a in call["TransactItems"]] for call in transactions
    ] == [["u1@example.com", "kept@example.com"], ["u1@example.com"]]

    # Users: the deleted ones gone, the neighbours kept.
    remaining = sorted(scan_all(db, settings.users_table))
    assert remaining == ["u10", "u1x"]


def test_batches_stay_within_aws_limits_for_many_users(aws):
    clients, settings = aws
    db, bucket, as_of = clients.dynamodb, settings.public_bucket_name, now_ms()
    ids = [f"user-{i:03d}" for i in range(60)]
    batch_write(db, settings.users_table, [delete_candidate(uid, as_of) for uid in ids])
    batch_write(db, settings.users_table, [active_user(f"keep-{i}", as_of) for i in range(5)])
    put_files(clients.s3, bucket, "user-000/", 990)
    for uid in ids[1:]:
        put_files(clients.s3, bucket, f"{uid}/", 2)
    put_files(clients.s3, bucket, "keep-0/", 2)
    # Existing addresses for a third of the users; the rest must be written (> 25 of them).
    existing = [{"id": s(f"{uid}@example.com"), "note": s("app")} for uid in ids[::3]]
    batch_write(db, settings.emails_table, existing)
    # One board with every deleted user interleaved with others (more than one update needed).
    entries = []
    for i, uid in enumerate(ids):
        entries.append(board_entry(uid, i))
        if i % 2 == 0:
            entries.append(board_entry(f"keep-{i}", i))
    batch_write(db, settings.scoreboards_table, [scoreboard("week", entries)])

    deletes = record_params(clients.s3, "DeleteObjects")
    transactions = record_params(db, "TransactWriteItems")
    outcomes = run_cascade(clients, settings, as_of, ids)

    assert outcomes.count(DELETED) == 60
    assert [len(call["Delete"]["Objects"]) for call in deletes] == [1000, 108]
    assert keys_under(clients.s3, bucket) == ["keep-0/file-00000.txt", "keep-0/file-00001.txt"]

    # All 60 in one conditional transaction, cancelled by the 20 kept; then the 40 missing.
    puts = [[a["Put"] for a in call["TransactItems"]] for call in transactions]
    assert [len(call) for call in puts] == [60, 40]
    assert {p["TableName"] for call in puts for p in call} == {settings.emails_table}
    assert {p["ConditionExpression"] for call in puts for p in call} == {
        "attribute_not_exists(#id)"
    }
    emails = scan_all(db, settings.emails_table)
    assert set(emails) == {f"{uid}@example.com" for uid in ids}
    for item in existing:
        assert emails[item["id"]["S"]] == item

    board = get_item(db, settings.scoreboards_table, "week")
    assert board["users"]["L"] == [e for e in entries if e["M"]["id"]["S"].startswith("keep-")]
    remaining = sorted(scan_all(db, settings.users_table))
    assert remaining == [f"keep-{i}" for i in range(5)]


def test_user_who_came_back_before_the_cascade_keeps_everything(aws):
    clients, settings = aws
    db, bucket, as_of = clients.dynamodb, settings.public_bucket_name, now_ms()
    batch_write(
        db, settings.users_table, [delete_candidate("back", as_of), delete_candidate("gone", as_of)]
    )
    back_files = put_files(clients.s3, bucket, "back/", 3)
    put_files(clients.s3, bucket, "gone/", 3)
    batch_write(db, settings.features_table, [feature("f1", "back"), feature("f2", "gone")])
    week = [board_entry("back", 1), board_entry("gone", 2)]
    batch_write(db, settings.scoreboards_table, [scoreboard("week", week)])
    # The candidate list was made before the user opened the app again.
    returned = now_ms()
    db.update_item(
        TableName=settings.users_table,
        Key={"id": s("back")},
        UpdateExpression="SET lastVisitAt = :t",
        ExpressionAttributeValues={":t": n(returned)},
    )
    db.delete_item(TableName=settings.users_table, Key={"id": s("gone")})
    batch_write(db, settings.users_table, [delete_candidate("gone", as_of)])

    outcomes = run_cascade(clients, settings, as_of, ["back", "gone", "missing"])

    back = outcome_of(outcomes, "back")
    assert (back["outcome"], back["step"]) == (SKIPPED, "recheck")
    assert back["error"].startswith("now active")
    missing = outcome_of(outcomes, "missing")
    assert (missing["outcome"], missing["step"]) == (SKIPPED, "recheck")
    assert outcome_of(outcomes, "gone")["outcome"] == DELETED

    assert keys_under(clients.s3, bucket) == back_files
    assert get_item(db, settings.features_table, "f1") == feature("f1", "back")
    assert get_item(db, settings.features_table, "f2") == feature("f2")
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == [week[0]]
    assert get_item(db, settings.users_table, "back")["lastVisitAt"] == n(returned)
    assert get_item(db, settings.emails_table, "back@example.com") is None


NOW = "now"


@pytest.mark.parametrize(
    ("initial", "update", "value"),
    [
        ({}, "SET lastVisitAt = :v", NOW),
        ({}, "SET lifeTimeDeal = :v", {"BOOL": True}),
        ({}, "SET subscription = :v", {"M": {"id": s("sub"), "status": s("active")}}),
        (
            {"subscription": {"M": {"id": s("sub"), "endsAt": n(1_700_000_000_000)}}},
            "SET subscription.endsAt = :v",
            n(4_000_000_000_000),
        ),
        ({"lifeTimeDeal": {"BOOL": False}}, "SET lifeTimeDeal = :v", n(1)),
        ({}, "SET accountDeletionEmailSentAt = :v", NOW),
    ],
    ids=["came-back", "lifetime-deal", "subscribed", "renewed", "deal-flag-set", "re-warned"],
)
def test_user_changed_during_the_cascade_keeps_the_user_item(aws, initial, update, value):
    clients, settings = aws
    db, as_of = clients.dynamodb, now_ms()
    batch_write(
        db,
        settings.users_table,
        [
            delete_candidate("changed", as_of, **initial),
            delete_candidate("other", as_of, **initial),
        ],
    )

    def app_writes() -> None:
        db.update_item(
            TableName=settings.users_table,
            Key={"id": s("changed")},
            UpdateExpression=update,
            ExpressionAttributeValues={":v": n(now_ms()) if value == NOW else value},
        )

    outcomes = run_cascade(
        clients, settings, as_of, ["changed", "other"], before_final_delete=app_writes
    )

    changed = outcome_of(outcomes, "changed")
    assert (changed["outcome"], changed["step"]) == (KEPT, "user")
    assert outcome_of(outcomes, "other")["outcome"] == DELETED
    assert get_item(db, settings.users_table, "changed") is not None
    assert get_item(db, settings.users_table, "other") is None


def _trial_ended(db, settings, user_id: str, at: int) -> None:
    """The app moves an ended trial's end: the user is still a delete candidate."""
    db.update_item(
        TableName=settings.users_table,
        Key={"id": s(user_id)},
        UpdateExpression="SET freeTrialEnd = :t",
        ExpressionAttributeValues={":t": n(at)},
    )


def test_still_a_candidate_after_a_refused_delete_is_deleted_against_the_fresh_item(aws):
    clients, settings = aws
    db, as_of = clients.dynamodb, now_ms()
    ended = as_of - 50 * DAY
    batch_write(db, settings.users_table, [delete_candidate("u1", as_of, freeTrialEnd=n(ended))])
    put_files(clients.s3, settings.public_bucket_name, "u1/", 2)

    outcomes = run_cascade(
        clients,
        settings,
        as_of,
        ["u1"],
        before_final_delete=lambda: _trial_ended(db, settings, "u1", ended + DAY),
    )

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert get_item(db, settings.users_table, "u1") is None
    assert keys_under(clients.s3, settings.public_bucket_name) == []
    # The item as re-read last is the one a restore brings back.
    assert restore(clients, settings, "u1")["status"] == "restored"
    assert get_item(db, settings.users_table, "u1")["freeTrialEnd"] == n(ended + DAY)


def test_item_that_keeps_changing_is_kept_after_a_few_deletes_with_its_data_back(aws):
    clients, settings = aws
    db, as_of = clients.dynamodb, now_ms()
    ended = as_of - 50 * DAY
    batch_write(db, settings.users_table, [delete_candidate("u1", as_of, freeTrialEnd=n(ended))])
    files = put_files(clients.s3, settings.public_bucket_name, "u1/", 2)
    batch_write(db, settings.features_table, [feature("f1", "u1")])
    app = boto3.client("dynamodb", region_name=settings.aws_region)
    deletes = []

    def app_writes_again(params, **_):
        deletes.append(params["Key"])
        _trial_ended(app, settings, "u1", ended + len(deletes))

    db.meta.events.register("before-parameter-build.dynamodb.DeleteItem", app_writes_again)
    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert len(deletes) == MAX_DELETE_ATTEMPTS
    u1 = outcome_of(outcomes, "u1")
    assert (u1["outcome"], u1["step"]) == ("failed", "user")
    assert "changed at each" in u1["error"]
    assert get_item(db, settings.users_table, "u1") is not None
    assert keys_under(clients.s3, settings.public_bucket_name) == files
    assert get_item(db, settings.features_table, "f1") == feature("f1", "u1")
    assert journals(clients, settings) == [] and ledger(clients, settings, "u1") == []


def test_run_that_died_half_way_is_finished_by_the_next_run(aws):
    clients, settings = aws
    db, bucket, as_of = clients.dynamodb, settings.public_bucket_name, now_ms()
    batch_write(db, settings.users_table, [delete_candidate("u1", as_of)])
    put_files(clients.s3, bucket, "u1/", 5)
    batch_write(db, settings.features_table, [feature("f1", "u1"), feature("f2", "u1")])
    batch_write(db, settings.scoreboards_table, [scoreboard("week", [board_entry("u1", 1)])])

    # First run: files and one feature done, then the process dies.
    ctx = cascade_context(clients, settings, as_of)
    batch = record_batch(ctx, confirm_candidates(ctx, ["u1"]), {"u1": ["f1", "f2"]})
    batch = delete_files(ctx, batch)
    unlink_features(ctx, batch, {"u1": ["f1"]})
    assert keys_under(clients.s3, bucket) == []
    put_files(clients.s3, bucket, "u1/", 1)  # the app wrote one more file meanwhile

    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert keys_under(clients.s3, bucket) == []
    features = [item for _, item in sorted(scan_all(db, settings.features_table).items())]
    assert features == [feature("f1"), feature("f2")]
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == []
    assert get_item(db, settings.users_table, "u1") is None

    # A second full pass over an already-finished user changes nothing and fails nothing.
    again = run_cascade(clients, settings, as_of, ["u1"])
    assert outcome_of(again, "u1")["outcome"] == SKIPPED


def test_scoreboard_changed_by_the_app_during_pruning_is_reread(aws):
    clients, settings = aws
    db, as_of = clients.dynamodb, now_ms()
    batch_write(db, settings.users_table, [delete_candidate("u1", as_of)])
    entries = [board_entry("a", 3), board_entry("u1", 2), board_entry("b", 1)]
    batch_write(db, settings.scoreboards_table, [scoreboard("week", entries)])
    app = boto3.client("dynamodb", region_name=settings.aws_region)
    newcomer = board_entry("new", 9)
    updates = record_params(db, "UpdateItem")
    inserted = []

    def app_inserts_first(params, **_):
        if params.get("TableName") == settings.scoreboards_table and not inserted:
            inserted.append(newcomer)
            app.update_item(
                TableName=settings.scoreboards_table,
                Key={"id": s("week")},
                UpdateExpression="SET #u = list_append(:new, #u)",
                ExpressionAttributeNames={"#u": "users"},
                ExpressionAttributeValues={":new": {"L": [newcomer]}},
            )

    db.meta.events.register("before-parameter-build.dynamodb.UpdateItem", app_inserts_first)
    ctx = cascade_context(clients, settings, as_of)
    batch = prune_scoreboards(ctx, record_batch(ctx, confirm_candidates(ctx, ["u1"]), {}))

    # The first removal named position 1, which the insert shifted: refused, re-read, retried.
    assert [u["UpdateExpression"] for u in updates] == ["REMOVE #users[1]", "REMOVE #users[2]"]
    assert "u1" in batch.items and batch.outcomes.rows == []
    expected = [newcomer, entries[0], entries[2]]
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == expected


def test_existing_address_is_never_overwritten_and_missing_one_is_written(aws):
    clients, settings = aws
    db, as_of = clients.dynamodb, now_ms()
    batch_write(
        db,
        settings.users_table,
        [delete_candidate("a", as_of, email="same@example.com"), delete_candidate("b", as_of)],
    )
    kept = {"id": s("same@example.com"), "unsubscribed": {"BOOL": True}}
    batch_write(db, settings.emails_table, [kept])
    ctx = cascade_context(clients, settings, as_of)
    archive_emails(ctx, confirm_candidates(ctx, ["a", "b"]))
    archive_emails(ctx, confirm_candidates(ctx, ["a", "b"]))
    assert [item for _, item in sorted(scan_all(db, settings.emails_table).items())] == [
        {"id": s("b@example.com")},
        kept,
    ]
