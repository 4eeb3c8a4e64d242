"""A run and a restore refuse a data map that cannot be used, or whose tables, indexes and
buckets do not exist, in their first step, before any write: the real job against moto."""

from collections.abc import Callable
from typing import Any

import pytest

from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.jobs import run_config_for
from tests.support import recording
from tests.support.aws_state import scan_all
from tests.support.data_maps import (
    APP_MAP,
    AVATARS_BUCKET,
    EVERY_KIND_MAP,
    create_every_kind_stores,
    create_table,
    index,
)
from tests.support.jobs import error_messages, execute_job, execute_restore, failed_steps
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


def test_a_map_with_stores_the_cascade_does_not_act_on_fails_the_first_step(
    aws, monkeypatch
) -> None:
    """Every table and bucket of the every-kind map exists, but this version's cascade deletes
    only the app's own stores and partition_key ones: a run with that map would leave the
    others' data behind."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_every_kind_stores(clients)
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    result = execute_job(selection=["users_snapshot"])
    assert not result.success
    message = _refusal(result, "users_snapshot")
    for name in ("avatars", "drafts", "teams"):
        assert f"stores.{name}: not acted on by this version's cascade" in message
    for name in ("sessions", "comments"):  # partition_key stores: covered
        assert f"stores.{name}:" not in message


def test_a_run_with_partition_key_stores_deletes_every_item_of_each_deleted_user(
    aws, monkeypatch, tmp_path
) -> None:
    """The job with a map that adds a table of composite key and a table read through a GSI:
    a dry run writes to neither, a run deletes every item of each deleted user there, and the
    ledger counts them by store."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    create_table(db, "sessions", "userId", "sessionId")
    create_table(db, "comments", "id", GlobalSecondaryIndexes=[index("byAuthor", "authorId")])
    owners = [DELETED[0], DELETED[1], "someone-active"]
    batch_write(
        db,
        "sessions",
        [{"userId": {"S": u}, "sessionId": {"S": f"s{n}"}} for u in owners for n in range(2)],
    )
    batch_write(db, "comments", [{"id": {"S": f"c-{u}"}, "authorId": {"S": u}} for u in owners])
    path = tmp_path / "map.yaml"
    path.write_text(
        APP_MAP.read_text()
        + "  sessions: {table: sessions, partition_key: userId}\n"
        + "  comments: {table: comments, index: byAuthor, partition_key: authorId}\n"
    )
    monkeypatch.setenv(MAP_VARIABLE, str(path))

    def items(name: str) -> list[dict[str, Any]]:
        return sorted(db.scan(TableName=name)["Items"], key=str)

    before = {name: items(name) for name in ("sessions", "comments")}

    assert execute_job(run_config_for(AS_OF_ISO, dry_run=True)).success
    assert {name: items(name) for name in before} == before

    assert execute_job().success
    assert {i["userId"]["S"] for i in items("sessions")} == {"someone-active"}
    assert {i["authorId"]["S"] for i in items("comments")} == {"someone-active"}
    archive = open_archive(settings.archive_location, clients.s3)
    deleted, verified = read_ledger(archive, DELETED[0])
    assert (deleted["stores"]["sessions"], deleted["stores"]["comments"]) == (2, 1)
    assert (verified["stores"]["sessions"], verified["stores"]["comments"]) == (0, 0)


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
