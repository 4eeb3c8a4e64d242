"""One user's failure never stops the others; it is recorded with its step and reported."""

from botocore.exceptions import ClientError

from cleanup_pipeline.actions.outcomes import DELETED, FAILED
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.core.recovery import PENDING
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import FailureLog, client_error, fail_when
from tests.support.aws_state import get_item, keys_under, put_files
from tests.support.cascade import outcome_of, run_cascade
from tests.support.items import board_entry, delete_candidate, feature, now_ms, s, scoreboard

USERS = ["ok1", "bad", "ok2"]


def seed(clients, settings, as_of):
    db, bucket = clients.dynamodb, settings.public_bucket_name
    batch_write(db, settings.users_table, [delete_candidate(uid, as_of) for uid in USERS])
    for uid in USERS:
        put_files(clients.s3, bucket, f"{uid}/", 3)
    batch_write(db, settings.features_table, [feature(f"f-{uid}", uid) for uid in USERS])


def assert_others_deleted(clients, settings, outcomes):
    for uid in ("ok1", "ok2"):
        assert outcome_of(outcomes, uid)["outcome"] == DELETED
        assert get_item(clients.dynamodb, settings.users_table, uid) is None
        assert keys_under(clients.s3, settings.public_bucket_name, f"{uid}/") == []
        assert get_item(clients.dynamodb, settings.features_table, f"f-{uid}") == feature(
            f"f-{uid}"
        )
        assert get_item(clients.dynamodb, settings.emails_table, f"{uid}@example.com")


def assert_failed(outcomes, failures, step, code):
    bad = outcome_of(outcomes, "bad")
    assert (bad["outcome"], bad["step"]) == (FAILED, step)
    assert code in bad["error"]
    assert [(uid, where) for uid, where, _ in failures.calls] == [("bad", f"delete.{step}")]
    error = failures.calls[0][2]
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == code


def journalled(clients, settings) -> list[dict]:
    store = open_archive(settings.archive_location, clients.s3)
    return [user for key in store.keys(PENDING) for user in store.read_json(key)["users"]]


def assert_given_back(clients, settings):
    """A user who failed after the cascade began hiding their data has it all back, and no
    journal is left for them."""
    bucket = settings.public_bucket_name
    assert keys_under(clients.s3, bucket, "bad/") == [f"bad/file-{i:05d}.txt" for i in range(3)]
    assert get_item(clients.dynamodb, settings.features_table, "f-bad") == feature("f-bad", "bad")
    assert journalled(clients, settings) == []


def test_listing_failure_for_one_folder(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    fault = fail_when(
        clients.s3,
        "ListObjectVersions",
        lambda p: p.get("Prefix") == "bad/",
        lambda: client_error("AccessDenied", "ListObjectVersions"),
    )
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)

    assert len(fault.calls) == 1
    fault.remove()
    assert_failed(outcomes, failures, "files", "AccessDenied")
    assert_others_deleted(clients, settings, outcomes)
    db = clients.dynamodb
    assert get_item(db, settings.users_table, "bad") == delete_candidate("bad", as_of)
    assert len(keys_under(clients.s3, settings.public_bucket_name, "bad/")) == 3
    assert get_item(db, settings.features_table, "f-bad") == feature("f-bad", "bad")
    assert get_item(db, settings.emails_table, "bad@example.com") is None


def test_feature_write_failure_for_one_user(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    fault = fail_when(
        clients.dynamodb,
        "UpdateItem",
        lambda p: p["TableName"] == settings.features_table and p["Key"]["id"] == s("f-bad"),
        lambda: client_error("ProvisionedThroughputExceededException", "UpdateItem"),
    )
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)
    fault.remove()

    assert_failed(outcomes, failures, "features", "ProvisionedThroughputExceededException")
    assert_others_deleted(clients, settings, outcomes)
    assert get_item(clients.dynamodb, settings.users_table, "bad") is not None
    assert_given_back(clients, settings)


def test_scoreboard_write_failure_fails_only_the_users_on_that_board(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    db = clients.dynamodb
    week = [board_entry("x", 1), board_entry("bad", 2)]
    month = [board_entry("ok1", 1), board_entry("y", 2), board_entry("ok2", 3)]
    batch_write(
        db, settings.scoreboards_table, [scoreboard("week", week), scoreboard("month", month)]
    )
    fault = fail_when(
        db,
        "UpdateItem",
        lambda p: p["TableName"] == settings.scoreboards_table and p["Key"]["id"] == s("week"),
        lambda: client_error("InternalServerError", "UpdateItem"),
    )
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)
    fault.remove()

    assert_failed(outcomes, failures, "scoreboards", "InternalServerError")
    assert_others_deleted(clients, settings, outcomes)
    assert get_item(db, settings.scoreboards_table, "week")["users"]["L"] == week
    assert get_item(db, settings.scoreboards_table, "month")["users"]["L"] == [month[1]]
    assert get_item(db, settings.users_table, "bad") is not None
    assert_given_back(clients, settings)


def test_final_delete_failure_for_one_user(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    fault = fail_when(
        clients.dynamodb,
        "DeleteItem",
        lambda p: p["Key"]["id"] == s("bad"),
        lambda: client_error("ThrottlingException", "DeleteItem"),
    )
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)
    fault.remove()

    assert_failed(outcomes, failures, "user", "ThrottlingException")
    assert_others_deleted(clients, settings, outcomes)
    assert get_item(clients.dynamodb, settings.users_table, "bad") is not None
    # Whether the item went is unknown: nothing is given back, the next run settles it.
    assert keys_under(clients.s3, settings.public_bucket_name, "bad/") == []
    assert [u["user_id"] for u in journalled(clients, settings)] == ["bad"]


def test_objects_s3_refused_fail_their_owner_once(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)

    bad_keys = [f"bad/file-{i:05d}.txt" for i in range(3)]
    refused: list[str] = []

    def keep_bad_keys(params, **_):  # S3 leaves what it refuses in place
        objects = params["Delete"]["Objects"]
        refused.extend(o["Key"] for o in objects if o["Key"] in bad_keys)
        params["Delete"]["Objects"] = [o for o in objects if o["Key"] not in bad_keys]

    def refuse_bad_keys(parsed, **_):
        parsed["Errors"] = [
            {"Key": key, "Code": "AccessDenied", "Message": "Access Denied"} for key in refused
        ]
        refused.clear()

    events = clients.s3.meta.events
    events.register("before-parameter-build.s3.DeleteObjects", keep_bad_keys)
    events.register("after-call.s3.DeleteObjects", refuse_bad_keys)
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)
    events.unregister("before-parameter-build.s3.DeleteObjects", keep_bad_keys)
    events.unregister("after-call.s3.DeleteObjects", refuse_bad_keys)

    bad = outcome_of(outcomes, "bad")
    assert (bad["outcome"], bad["step"]) == (FAILED, "files")
    assert "AccessDenied" in bad["error"]
    assert [(uid, where) for uid, where, _ in failures.calls] == [("bad", "delete.files")]
    assert_others_deleted(clients, settings, outcomes)
    assert get_item(clients.dynamodb, settings.users_table, "bad") is not None
    assert get_item(clients.dynamodb, settings.features_table, "f-bad") == feature("f-bad", "bad")
    assert keys_under(clients.s3, settings.public_bucket_name, "bad/") == bad_keys


def test_recheck_failure_fails_the_batch_and_touches_nothing(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    fault = fail_when(
        clients.dynamodb,
        "BatchGetItem",
        lambda p: settings.users_table in p["RequestItems"],
        lambda: client_error("ThrottlingException", "BatchGetItem"),
    )
    failures = FailureLog()
    outcomes = run_cascade(clients, settings, as_of, USERS, on_failure=failures)
    fault.remove()

    assert [(r["id"], r["outcome"], r["step"]) for r in outcomes.rows] == [
        (uid, FAILED, "recheck") for uid in USERS
    ]
    assert sorted(uid for uid, _, _ in failures.calls) == sorted(USERS)
    assert len(keys_under(clients.s3, settings.public_bucket_name)) == 9
    for uid in USERS:
        assert get_item(clients.dynamodb, settings.users_table, uid) is not None
