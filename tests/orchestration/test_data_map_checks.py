"""A run and a restore refuse a data map that cannot be used, or whose tables, indexes and
buckets do not exist, in their first step, before any write: the real job against moto."""

from collections.abc import Callable
from typing import Any

import pytest

from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import keys_under, scan_all, table_items
from tests.support.data_maps import (
    APP_MAP,
    AVATARS_BUCKET,
    EVERY_KIND_MAP,
    EXTRA_STORES,
    add_extra_stores,
    create_avatars_bucket,
    create_every_kind_stores,
    create_table,
    index,
    put_sessions_and_comments,
    use_app_map_with,
)
from tests.support.jobs import error_messages, execute_job, execute_restore, failed_steps
from tests.support.recovery_world import ledger, store_counts
from tests.support.world import AS_OF_ISO, DELETED, seed_world

pytestmark = pytest.mark.usefixtures("fresh_recording")


def _missing_table(clients: Any) -> str:
    create_every_kind_stores(clients, skip=("sessions",))
    return "stores.sessions.table: table 'sessions' does not exist"


def _missing_index(clients: Any) -> str:
    create_every_kind_stores(clients, skip=("comments",))
    create_table(clients.dynamodb, "comments", "id")
    return "stores.comments.index: table 'comments' has no index 'byAuthor'"


def _index_of_another_key(clients: Any) -> str:
    create_every_kind_stores(clients, skip=("comments",))
    create_table(
        clients.dynamodb, "comments", "id", GlobalSecondaryIndexes=[index("byAuthor", "postId")]
    )
    return "stores.comments.index: index 'byAuthor' of 'comments' is keyed by 'postId'"


def _missing_bucket(clients: Any) -> str:
    create_every_kind_stores(clients, skip=(AVATARS_BUCKET,))
    return f"stores.avatars.bucket: bucket {AVATARS_BUCKET!r} does not exist"


PROBLEMS: dict[str, Callable[[Any], str]] = {
    "missing table": _missing_table,
    "missing index": _missing_index,
    "index of another key": _index_of_another_key,
    "missing bucket": _missing_bucket,
}


def _refusal(result: Any, step: str) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    return error_messages(failure.step_failure_data.error)


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_a_run_refuses_a_store_that_does_not_exist_before_the_scan(
    aws, monkeypatch, problem
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    expected = PROBLEMS[problem](clients)
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    users = scan_all(clients.dynamodb, settings.users_table)
    recording.reset()

    result = execute_job()

    assert not result.success
    assert expected in _refusal(result, "users_snapshot")
    assert "deleted_accounts" not in " ".join(failed_steps(result))
    # Nothing that writes ran, not even the settling of deletions crashed runs left.
    ran = {e.step_key for e in result.all_events if e.is_step_start}
    assert not ran & {"unfinished_deletions", "warning_emails", "purged_deletions"}
    assert recording.writes() == []
    assert ("Scan", settings.users_table) not in [
        (name, params.get("TableName")) for name, params in recording.CALLS
    ]
    assert scan_all(clients.dynamodb, settings.users_table) == users


def test_a_run_with_the_every_kind_map_deletes_proves_and_restores_each_store(
    aws, monkeypatch
) -> None:
    """The every-kind example map (a second bucket, an attribute store deleted whole, a list
    store without items, a table of composite key, a table read through an index): a dry run
    changes nothing, a run removes every deleted user's data from every store and leaves the
    others', the ledger counts each store and proves it empty, and a restore puts one user's
    data back in every store."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_every_kind_stores(clients, versioned=True)
    db, s3 = clients.dynamodb, clients.s3
    owners = [DELETED[0], DELETED[1], "someone-active"]
    for user_id in owners:
        s3.put_object(Bucket=AVATARS_BUCKET, Key=f"avatars/{user_id}/me.png", Body=user_id.encode())
    batch_write(db, "drafts", [{"id": {"S": f"d-{u}"}, "authorId": {"S": u}} for u in owners])
    members = {"L": [{"M": {"userId": {"S": u}, "role": {"S": "member"}}} for u in owners]}
    batch_write(db, "teams", [{"id": {"S": "t1"}, "members": members}])
    put_sessions_and_comments(db, owners, ("s0", "s1"))
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    tables = ("drafts", "teams", "sessions", "comments")

    def state() -> dict[str, Any]:
        found: dict[str, Any] = {name: table_items(db, name) for name in tables}
        found["avatars"] = sorted(keys_under(s3, AVATARS_BUCKET, "avatars/"))
        return found

    before = state()
    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True)).success
    assert state() == before

    assert execute_job().success
    after = state()
    assert after["avatars"] == ["avatars/someone-active/me.png"]
    assert [i["authorId"]["S"] for i in after["drafts"]] == ["someone-active"]
    assert [i["authorId"]["S"] for i in after["comments"]] == ["someone-active"]
    assert {i["userId"]["S"] for i in after["sessions"]} == {"someone-active"}
    [team] = after["teams"]
    assert [e["M"]["userId"]["S"] for e in team["members"]["L"]] == ["someone-active"]
    deleted, verified = ledger(clients, settings, DELETED[0])
    extra = {"avatars": 1, "drafts": 1, "teams": 1, "sessions": 2, "comments": 1}
    assert {name: deleted["stores"][name] for name in extra} == extra
    assert verified["stores"] == dict.fromkeys(
        ("files", "avatars", "features", "drafts", "scoreboards", "teams", "sessions", "comments"),
        0,
    )

    assert execute_restore(DELETED[0]).success
    back = state()
    assert f"avatars/{DELETED[0]}/me.png" in back["avatars"]
    assert (
        s3.get_object(Bucket=AVATARS_BUCKET, Key=f"avatars/{DELETED[0]}/me.png")["Body"].read()
        == DELETED[0].encode()
    )
    assert {i["authorId"]["S"] for i in back["drafts"]} == {DELETED[0], "someone-active"}
    assert {i["authorId"]["S"] for i in back["comments"]} == {DELETED[0], "someone-active"}
    assert {i["userId"]["S"] for i in back["sessions"]} == {DELETED[0], "someone-active"}
    [team] = back["teams"]
    assert [e["M"]["userId"]["S"] for e in team["members"]["L"]] == [DELETED[0], "someone-active"]


def test_a_run_with_partition_key_stores_deletes_every_item_of_each_deleted_user(
    aws, monkeypatch, tmp_path
) -> None:
    """The job with a map that adds a table of composite key and a table read through a GSI:
    a dry run writes to neither, a run deletes every item of each deleted user there, and the
    ledger counts them by store."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "partition_key")
    put_sessions_and_comments(db, [DELETED[0], DELETED[1], "someone-active"], ("s0", "s1"))

    def items(name: str) -> list[dict[str, Any]]:
        return table_items(db, name)

    before = {name: items(name) for name in ("sessions", "comments")}

    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True)).success
    assert {name: items(name) for name in before} == before

    assert execute_job().success
    assert {i["userId"]["S"] for i in items("sessions")} == {"someone-active"}
    assert {i["authorId"]["S"] for i in items("comments")} == {"someone-active"}
    counted = store_counts(clients, settings, DELETED[0], "sessions", "comments")
    assert counted == ((2, 1), (0, 0))


def test_a_run_with_list_stores_scans_each_table_without_items_once_and_removes_the_entries(
    aws, monkeypatch, tmp_path
) -> None:
    """The job, in batches of two, with a map that adds a list store of named items and one
    without items on a table of composite key: a dry run reads and writes neither, a run scans
    the table without items once for every batch and removes each deleted user's entries, the
    others' kept in order, and the ledger counts them by store."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "list")

    def entries(key: str, users: list[str]) -> dict[str, Any]:
        return {"L": [{"M": {key: {"S": u}, "since": {"S": f"s-{u}"}}} for u in users]}

    everyone = ["someone-active", *DELETED, "another-active"]
    batch_write(
        db, "leaderboards", [{"board": {"S": "daily"}, "players": entries("pid", everyone)}]
    )
    batch_write(
        db,
        "teams",
        [
            {"orgId": {"S": "o1"}, "teamId": {"S": f"t{n}"}, "members": entries("userId", everyone)}
            for n in range(3)
        ]
        + [{"orgId": {"S": "o2"}, "teamId": {"S": "t0"}, "members": entries("userId", ["x"])}],
    )
    before = {name: table_items(db, name) for name in ("leaderboards", "teams")}

    def calls_to(table: str) -> list[str]:
        return [name for name, params in recording.CALLS if params.get("TableName") == table]

    recording.reset()
    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True)).success
    assert {name: table_items(db, name) for name in before} == before
    # Only the check, before anything, that the tables exist.
    assert calls_to("teams") == calls_to("leaderboards") == ["DescribeTable"]

    recording.reset()
    policy = CleanupPolicy(send_rate_per_second=200, deletion_batch_size=2)
    result = execute_job(policy=policy)

    assert result.success
    batches = [
        e for e in result.all_events if e.is_step_success and "delete_account_batch" in e.step_key
    ]
    assert len(batches) == 3
    assert calls_to("teams").count("Scan") == 1
    assert calls_to("leaderboards").count("Scan") == 0
    kept = entries("userId", ["someone-active", "another-active"])
    assert [i["members"] for i in table_items(db, "teams") if i["orgId"]["S"] == "o1"] == [kept] * 3
    [daily] = table_items(db, "leaderboards")
    assert daily["players"] == entries("pid", ["someone-active", "another-active"])
    counted = store_counts(clients, settings, DELETED[0], "leaderboards", "teams")
    assert counted == ((1, 3), (0, 0))


def test_the_app_map_passes_the_first_step(aws, monkeypatch) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    assert execute_job(selection=["users_snapshot"]).success


def test_a_run_refuses_a_map_file_that_is_bad_before_any_aws_call(
    aws, monkeypatch, tmp_path
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    path = tmp_path / "map.yaml"
    path.write_text(
        "stores:\n"
        "  sessions: {table: sessions, partition_key: userId, action: remove_attribute}\n"
        "  Avatars: {s3_prefix: 'avatars/'}\n"
    )
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    recording.reset()

    result = execute_job()

    assert not result.success
    message = _refusal(result, "users_snapshot")
    assert (
        f"{MAP_VARIABLE} {path}: stores.sessions.action: 'remove_attribute' does not fit" in message
    )
    assert "stores.Avatars: a store's name" in message
    assert "stores.Avatars.s3_prefix: must contain '{id}'" in message
    # The step that lists the app's stores refuses it too, at once: retrying cannot help.
    [coverage] = [e for e in result.all_events if e.step_key == "app_stores" and e.is_step_failure]
    assert "stores.sessions.action" in error_messages(coverage.step_failure_data.error)
    assert not [e for e in result.all_events if e.is_step_up_for_retry]
    assert [name for name, _ in recording.CALLS if name != "Scan"] == []  # holds, requests read


def test_a_restore_refuses_a_store_that_does_not_exist_before_putting_anything_back(
    aws, monkeypatch
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    assert execute_job().success
    user_id = DELETED[0]
    assert user_id not in scan_all(clients.dynamodb, settings.users_table)
    expected = _missing_bucket(clients)
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    recording.reset()

    result = execute_restore(user_id)

    assert not result.success
    assert expected in _refusal(result, "restore_deleted_account")
    assert recording.writes() == []
    assert user_id not in scan_all(clients.dynamodb, settings.users_table)

    monkeypatch.delenv(MAP_VARIABLE)  # the built-in map: everything exists, the restore goes on
    assert execute_restore(user_id).success
    assert user_id in scan_all(clients.dynamodb, settings.users_table)


def test_a_run_with_s3_prefix_stores_deletes_every_object_of_each_deleted_user(
    aws, monkeypatch, tmp_path
) -> None:
    """The job with a map that adds a second bucket and a second prefix of the public bucket: a
    dry run writes to neither, a run hides every object of each deleted user there (the
    versions kept for the restore window), the ledger counts them by store, the proof finds
    nothing left, and a neighbour's folder stays."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    s3, public = clients.s3, settings.public_bucket_name
    add_extra_stores(clients, monkeypatch, tmp_path, "s3_prefix")
    for owner in [DELETED[0], DELETED[1], "u1x"]:
        for name in ("a.png", "b.png"):
            s3.put_object(Bucket=AVATARS_BUCKET, Key=f"avatars/{owner}/{name}", Body=b"x")
        s3.put_object(Bucket=public, Key=f"thumbs/{owner}/t.png", Body=b"x")

    def objects() -> dict[str, list[str]]:
        return {
            "avatars": keys_under(s3, AVATARS_BUCKET, "avatars/"),
            "thumbs": keys_under(s3, public, "thumbs/"),
        }

    def version_count() -> int:
        return len(s3.list_object_versions(Bucket=AVATARS_BUCKET).get("Versions", []))

    before = objects()
    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True)).success
    assert objects() == before
    assert s3.list_object_versions(Bucket=AVATARS_BUCKET).get("DeleteMarkers", []) == []

    assert execute_job().success
    assert objects() == {
        "avatars": ["avatars/u1x/a.png", "avatars/u1x/b.png"],
        "thumbs": ["thumbs/u1x/t.png"],
    }
    assert version_count() == 6  # kept for the restore window
    counted = store_counts(clients, settings, DELETED[0], "avatars", "thumbs")
    assert counted == ((2, 1), (0, 0))


def test_a_restore_window_needs_the_versioning_of_every_s3_prefix_stores_bucket(
    aws, monkeypatch, tmp_path
) -> None:
    """Files are kept as versions: with a restore window a store's bucket that keeps none fails
    the first step, naming the bucket and the fix, before any write; without a window it may
    keep none."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_avatars_bucket(clients.s3, versioned=False)
    use_app_map_with(monkeypatch, tmp_path, EXTRA_STORES["s3_prefix"])
    recording.reset()

    result = execute_job()

    assert not result.success
    message = _refusal(result, "users_snapshot")
    assert f"versioning of bucket {AVATARS_BUCKET!r} is not enabled" in message
    assert f"put-bucket-versioning --bucket {AVATARS_BUCKET}" in message
    assert recording.writes() == []
    monkeypatch.setenv("RESTORE_WINDOW_DAYS", "0")
    assert execute_job(selection=["users_snapshot"]).success


def test_a_run_with_attribute_stores_scans_each_once_and_acts_on_every_batch(
    aws, monkeypatch, tmp_path
) -> None:
    """The job with a map that adds drafts deleted whole (composite key) and likes whose
    `likedBy` is removed, its deleted users in batches of one: each table is scanned once for
    the whole run, a dry run writes to neither, and a run acts on the items of each deleted
    user alone, counted by store in the ledger."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "attribute")
    owners = [*DELETED, "someone-active"]
    batch_write(
        db,
        "drafts",
        [
            {"space": {"S": f"s{n}"}, "draftId": {"S": u}, "authorId": {"S": u}}
            for u in owners
            for n in range(2)
        ],
    )
    batch_write(db, "likes", [{"id": {"S": f"l-{u}"}, "likedBy": {"S": u}} for u in owners])
    policy = CleanupPolicy(send_rate_per_second=200, deletion_batch_size=1)

    def items(name: str) -> list[dict[str, Any]]:
        return table_items(db, name)

    def scans(name: str) -> int:
        return sum(1 for call, p in recording.CALLS if call == "Scan" and p["TableName"] == name)

    before = {name: items(name) for name in ("drafts", "likes")}
    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True), policy=policy).success
    assert {name: items(name) for name in before} == before
    assert (scans("drafts"), scans("likes")) == (0, 0)

    result = execute_job(policy=policy)

    assert result.success
    batches = {e.step_key for e in result.all_events if e.is_step_start}
    assert len([key for key in batches if "delete_account_batch" in key]) == len(DELETED) > 1
    assert (scans("drafts"), scans("likes")) == (1, 1)
    assert {i["authorId"]["S"] for i in items("drafts")} == {"someone-active"}
    assert {i["id"]["S"] for i in items("likes")} == {f"l-{u}" for u in owners}
    assert [i["likedBy"]["S"] for i in items("likes") if "likedBy" in i] == ["someone-active"]
    for user_id in DELETED:
        counted = store_counts(clients, settings, user_id, "drafts", "likes")
        assert counted == ((2, 1), (0, 0))


def test_a_map_may_leave_out_the_apps_own_stores_or_declare_them_otherwise(
    aws, monkeypatch, tmp_path
) -> None:
    """A map without the app's features and scoreboards, whose files are in another folder of
    the bucket, and with a sessions table: a run deletes and proves exactly what it declares
    (the features, boards and folders it leaves out are untouched), the ledger counts those
    stores alone, and a restore puts back what went."""
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    db, s3, bucket = clients.dynamodb, clients.s3, settings.public_bucket_name
    create_table(db, "sessions", "userId", "sessionId")
    owners = [DELETED[0], DELETED[1], "someone-active"]
    for user_id in owners:
        s3.put_object(Bucket=bucket, Key=f"media/{user_id}/a.png", Body=user_id.encode())
    batch_write(db, "sessions", [{"userId": {"S": u}, "sessionId": {"S": "s1"}} for u in owners])
    path = tmp_path / "map.yaml"
    path.write_text(
        "stores:\n"
        '  files: {s3_prefix: "media/{id}/"}\n'
        "  sessions: {table: sessions, partition_key: userId}\n"
    )
    monkeypatch.setenv(MAP_VARIABLE, str(path))

    def untouched() -> dict[str, Any]:
        return {
            "features": scan_all(db, settings.features_table),
            "scoreboards": scan_all(db, settings.scoreboards_table),
            "folders": sorted(keys_under(s3, bucket, f"{DELETED[0]}/")),
        }

    before = untouched()
    assert before["folders"] == sorted(seeded.files[DELETED[0]])
    assert execute_job().success
    assert untouched() == before
    assert sorted(keys_under(s3, bucket, "media/")) == ["media/someone-active/a.png"]
    assert [i["userId"]["S"] for i in table_items(db, "sessions")] == ["someone-active"]
    deleted, verified = ledger(clients, settings, DELETED[0])
    assert deleted["stores"] == {"files": 1, "sessions": 1}
    assert (deleted["files"], deleted["features"], deleted["scoreboard_entries"]) == (1, 0, 0)
    assert verified["stores"] == {"files": 0, "sessions": 0}

    assert execute_restore(DELETED[0]).success
    assert sorted(keys_under(s3, bucket, "media/")) == [
        f"media/{DELETED[0]}/a.png",
        "media/someone-active/a.png",
    ]
    body = s3.get_object(Bucket=bucket, Key=f"media/{DELETED[0]}/a.png")["Body"].read()
    assert body == DELETED[0].encode()
    back = {i["userId"]["S"] for i in table_items(db, "sessions")}
    assert back == {DELETED[0], "someone-active"}
    assert untouched() == before
