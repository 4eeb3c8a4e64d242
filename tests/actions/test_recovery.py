"""Archive before delete, deleted means gone, restore, purge and the ledger (SPEC §9), against
moto: the cascade as one batch of the job runs it, the restore and the purge as their callers
run them."""

import json
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError
from moto.core.models import botocore_stubber

from cleanup_pipeline.actions.outcomes import DELETED, KEPT
from cleanup_pipeline.core.recovery import DAY_MS
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.aws_state import get_item, keys_under, put_files
from tests.support.cascade import outcome_of, run_cascade
from tests.support.items import board_entry, delete_candidate, feature, now_ms, s, scoreboard
from tests.support.recovery_world import (
    FILES,
    MONTH,
    WEEK,
    archive,
    body_of,
    comes_back,
    journals,
    ledger,
    manifests,
    purge,
    restore,
    seed,
    versions_under,
    with_window,
)


def board(clients, settings, name: str) -> list[dict[str, Any]]:
    return get_item(clients.dynamodb, settings.scoreboards_table, name)["users"]["L"]


def test_window_zero_removes_every_version_and_marker_of_the_folder_only(aws):
    clients, base = aws
    settings = with_window(base, 0)
    as_of = now_ms()
    seed(clients, settings, as_of)
    put_files(clients.s3, settings.public_bucket_name, "u1/many/", 1001)  # two listing pages
    clients.s3.put_object(
        Bucket=settings.public_bucket_name, Key="u1/many/file-00001.txt", Body=b"v2"
    )
    before = versions_under(clients, settings, "u1/")
    assert len(before) > 1000

    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert versions_under(clients, settings, "u1/") == []
    assert keys_under(clients.s3, settings.public_bucket_name) == ["u10/keep.txt", "u1x/keep.txt"]
    assert len(versions_under(clients, settings, "u1x/")) == 1
    assert manifests(clients, settings) == [] and journals(clients, settings) == []
    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert event["event"] == "deleted" and event["restorable_until"] == event["at"]
    assert (event["files"], event["features"], event["scoreboard_entries"]) == (1004, 2, 3)
    refused = restore(clients, settings, "u1")
    assert refused["status"] == "refused" and "no restore window" in refused["reason"]


def test_window_zero_leaves_no_marker_when_hiding_was_answered_only_on_a_retry(aws):
    """S3 hid the files but its answer was lost; the retry made a second marker per file, and
    only those are named in the answer: the folder is listed again once the item is gone."""
    clients, base = aws
    settings = with_window(base, 0)
    as_of = now_ms()
    seed(clients, settings, as_of)
    lost: list[str] = []

    def answer_lost_once(request: Any, event_name: str, **kwargs: Any) -> Any:
        response = botocore_stubber(event_name, request, **kwargs)
        if request.method == "POST" and "delete" in request.url and not lost:
            lost.append(request.url)
            raise ConnectionClosedError(endpoint_url=request.url, request=request)
        return response

    events = clients.s3.meta.events
    events.unregister("before-send", botocore_stubber)
    events.register_first("before-send", answer_lost_once)
    try:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])
    finally:
        events.unregister("before-send", answer_lost_once)
        events.register("before-send", botocore_stubber)

    assert lost and outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert versions_under(clients, settings, "u1/") == []
    assert len(versions_under(clients, settings, "u1x/")) == 1


def test_manifest_is_durable_before_the_first_destructive_step(aws):
    clients, settings = aws
    as_of = now_ms()
    user = seed(clients, settings, as_of)
    seen: list[tuple[list[str], list[str]]] = []

    def first_destructive_call(params: dict[str, Any], **_: Any) -> None:
        seen.append((manifests(clients, settings), journals(clients, settings)))

    for event in ("DeleteObjects", "UpdateItem", "DeleteItem", "PutItem"):
        clients.s3.meta.events.register(f"before-call.s3.{event}", first_destructive_call)
        clients.dynamodb.meta.events.register(
            f"before-call.dynamodb.{event}", first_destructive_call
        )
    current = {
        v["Key"]: v["VersionId"]
        for v in versions_under(clients, settings, "u1/")
        if v.get("IsLatest") and "Size" in v
    }

    run_cascade(clients, settings, as_of, ["u1"])

    assert seen and all(m and j for m, j in seen)  # before the first and every later one
    [key] = manifests(clients, settings)
    text = archive(clients, settings).read(key).decode()
    manifest = json.loads(text)
    [archived] = manifest["users"]
    assert archived["item"] == user  # every attribute, the address included
    assert {f["key"]: f["version_id"] for f in archived["files"]} == current
    assert sorted(archived["features"]) == ["f1", "f2"]
    assert sorted((e["board"], e["position"]) for e in archived["scoreboard_entries"]) == [
        ("month", 1),
        ("week", 1),
        ("week", 3),
    ]
    assert manifest["window_days"] == 30
    assert manifest["restorable_until"] == manifest["deleted_at"] + 30 * DAY_MS
    # The files' contents stay as versions; nothing current is left.
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == []
    assert journals(clients, settings) == []
    [event, proof] = ledger(clients, settings, "u1")
    assert proof["event"] == "verified"
    assert event["restorable_until"] == manifest["restorable_until"]
    assert "@" not in json.dumps(event)


def test_restore_brings_everything_back_and_a_new_episode_starts(aws):
    clients, settings = aws
    as_of = now_ms()
    user = seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    before = now_ms()

    dry = restore(clients, settings, "u1", dry_run=True)
    assert dry["status"] == "dry_run"
    assert get_item(clients.dynamodb, settings.users_table, "u1") is None
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == []

    result = restore(clients, settings, "u1")

    assert result["status"] == "restored"
    expected = {"item": 1, "files": 3, "features": 2, "scoreboards": 3}
    assert result["restored"] == dry["restored"] == expected
    assert {k: v for k, v in result["skipped"].items() if k != "why"} == dict.fromkeys(expected, 0)
    for key, content in FILES.items():
        assert body_of(clients, settings, key) == (content, {"k": key}, "text/plain")
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == sorted(FILES)
    assert get_item(clients.dynamodb, settings.features_table, "f1") == feature(
        "f1", "u1", title=s("Dark mode")
    )
    assert board(clients, settings, "week") == WEEK and board(clients, settings, "month") == MONTH
    item = get_item(clients.dynamodb, settings.users_table, "u1")
    assert "accountDeletionEmailSentAt" not in item
    assert int(item["lastVisitAt"]["N"]) >= before
    assert {k: v for k, v in item.items() if k != "lastVisitAt"} == {
        k: v for k, v in user.items() if k not in ("lastVisitAt", "accountDeletionEmailSentAt")
    }
    assert [e["event"] for e in ledger(clients, settings, "u1")] == [
        "deleted",
        "verified",
        "restored",
    ]

    again = restore(clients, settings, "u1")
    assert again["status"] == "refused" and "already restored" in again["reason"]


def test_restore_refuses_a_live_account_and_writes_nothing(aws):
    clients, settings = aws
    as_of = now_ms()
    user = seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    put_items(clients.dynamodb, settings.users_table, [user])  # signed up again meanwhile
    writes = [
        record_params(client, op)
        for client, op in (
            (clients.s3, "DeleteObjects"),
            (clients.dynamodb, "UpdateItem"),
            (clients.dynamodb, "PutItem"),
        )
    ]

    result = restore(clients, settings, "u1")

    assert result["status"] == "refused" and "exists" in result["reason"]
    assert result["restored"] == {"item": 0, "files": 0, "features": 0, "scoreboards": 0}
    assert all(calls == [] for calls in writes)
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]


def test_never_deleted_user_restore_is_refused(aws):
    clients, settings = aws
    result = restore(clients, settings, "nobody")
    assert result["status"] == "refused" and result["reason"].startswith("never deleted")
    assert ledger(clients, settings, "nobody") == []


def test_restore_skips_what_changed_and_clamps_positions(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    db, bucket = clients.dynamodb, settings.public_bucket_name
    put_items(db, settings.features_table, [feature("f1", "someone")])  # re-proposed
    db.delete_item(TableName=settings.features_table, Key={"id": s("f2")})
    put_items(db, settings.scoreboards_table, [scoreboard("week", [board_entry("z", 1)])])
    db.delete_item(TableName=settings.scoreboards_table, Key={"id": s("month")})
    clients.s3.put_object(Bucket=bucket, Key="u1/c.txt", Body=b"written after the deletion")

    result = restore(clients, settings, "u1")

    assert result["status"] == "restored"
    assert result["restored"] == {"item": 1, "files": 2, "features": 0, "scoreboards": 2}
    skipped = result["skipped"]
    assert (skipped["files"], skipped["features"], skipped["scoreboards"]) == (1, 2, 1)
    assert any("c.txt" in why for why in skipped["why"]["files"])
    assert get_item(db, settings.features_table, "f1") == feature("f1", "someone")
    # Positions 1 and 3 on a board of one entry: clamped, in their recorded order.
    assert board(clients, settings, "week") == [board_entry("z", 1), WEEK[1], WEEK[3]]
    assert body_of(clients, settings, "u1/c.txt")[0] == b"written after the deletion"


def test_interrupted_restore_finishes_when_run_again_without_duplicates(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])

    class Crash(BaseException):
        pass

    def crash(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == settings.users_table:
            raise Crash

    clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", crash)
    with pytest.raises(Crash):
        restore(clients, settings, "u1")
    clients.dynamodb.meta.events.unregister("before-parameter-build.dynamodb.PutItem", crash)
    assert get_item(clients.dynamodb, settings.users_table, "u1") is None
    assert board(clients, settings, "week") == WEEK  # already back, once

    result = restore(clients, settings, "u1")

    assert result["status"] == "restored"
    assert result["restored"] == {"item": 1, "files": 3, "features": 2, "scoreboards": 3}
    assert board(clients, settings, "week") == WEEK and board(clients, settings, "month") == MONTH
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == sorted(FILES)
    assert [e["event"] for e in ledger(clients, settings, "u1")] == [
        "deleted",
        "verified",
        "restored",
    ]


class Killed(BaseException):
    """The process running the restore died here."""


def killed_restore(clients, settings, user_id: str, event: str, run_id: str) -> None:
    """A restore of `user_id` that dies at `event` of its PutItem of the user item:
    `before-parameter-build` (nothing put) or `after-call` (the item is back)."""

    def die(**_: Any) -> None:
        raise Killed

    clients.dynamodb.meta.events.register(f"{event}.dynamodb.PutItem", die)
    try:
        with pytest.raises(Killed):
            restore(clients, settings, user_id, run_id=run_id)
    finally:
        clients.dynamodb.meta.events.unregister(f"{event}.dynamodb.PutItem", die)


def restoring_records(clients, settings) -> list[str]:
    return archive(clients, settings).keys("restoring/")


@pytest.mark.parametrize("came_back", [False, True])
def test_restore_killed_after_putting_the_item_back_is_finished_by_the_next(aws, came_back):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    killed_restore(clients, settings, "u1", "after-call", run_id="killed")
    put_back = get_item(clients.dynamodb, settings.users_table, "u1")
    assert put_back is not None and len(restoring_records(clients, settings)) == 1
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]
    if came_back:  # the person signed in between the two restores
        comes_back(clients, settings, at=now_ms() + 1)

    dry = restore(clients, settings, "u1", dry_run=True)
    assert dry["status"] == "dry_run" and "interrupted restore" in dry["reason"]
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]
    writes = [record_params(clients.dynamodb, op) for op in ("PutItem", "UpdateItem")]
    deletes = record_params(clients.s3, "DeleteObjects")
    result = restore(clients, settings, "u1", run_id="finishing")

    assert result["status"] == "restored", result
    assert "finished an interrupted restore" in result["reason"]
    assert result["restored"] == {"item": 1, "files": 3, "features": 2, "scoreboards": 3}
    assert writes == [[], []] and deletes == []  # only the ledger is written
    events = ledger(clients, settings, "u1")
    assert [e["event"] for e in events] == ["deleted", "verified", "restored"]
    assert (events[2]["run_id"], events[2]["recorded_by"]) == ("killed", "finishing")
    assert restoring_records(clients, settings) == []
    assert board(clients, settings, "week") == WEEK and board(clients, settings, "month") == MONTH
    again = restore(clients, settings, "u1")
    assert again["status"] == "refused" and "already restored" in again["reason"]
    assert len(ledger(clients, settings, "u1")) == 3


@pytest.mark.parametrize("killed", ["before-parameter-build", "after-call"])
def test_an_account_created_anew_after_an_interrupted_restore_is_refused(aws, killed):
    """Killed before its PutItem (the record written, no item) or after it (and the account
    was removed since): either way an account the person created is not the restore's."""
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    killed_restore(clients, settings, "u1", killed, run_id="killed")
    assert len(restoring_records(clients, settings)) == 1
    db = clients.dynamodb
    db.delete_item(TableName=settings.users_table, Key={"id": s("u1")})
    anew = {"id": s("u1"), "email": s("u1@example.com"), "lastVisitAt": {"N": str(now_ms())}}
    put_items(db, settings.users_table, [anew])

    result = restore(clients, settings, "u1")

    assert result["status"] == "refused" and "exists" in result["reason"]
    assert result["restored"]["item"] == 0
    assert get_item(db, settings.users_table, "u1") == anew
    assert [e["event"] for e in ledger(clients, settings, "u1")] == ["deleted", "verified"]


def test_restore_killed_between_its_event_and_the_end_leaves_nothing_behind(aws, monkeypatch):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    store_type = type(archive(clients, settings))
    original = store_type.remove

    def dies(self, key: str) -> None:
        if key.startswith("restoring/"):
            raise Killed
        original(self, key)

    with monkeypatch.context() as patch:
        patch.setattr(store_type, "remove", dies)
        with pytest.raises(Killed):
            restore(clients, settings, "u1")
    assert [e["event"] for e in ledger(clients, settings, "u1")] == [
        "deleted",
        "verified",
        "restored",
    ]
    assert len(restoring_records(clients, settings)) == 1

    again = restore(clients, settings, "u1")

    assert again["status"] == "refused" and "already restored" in again["reason"]
    assert restoring_records(clients, settings) == []
    assert len(ledger(clients, settings, "u1")) == 3


def test_purge_after_the_window_removes_every_version_and_the_manifests(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])
    assert purge(clients, settings, now_ms()).purged_users == 0  # window still open
    later = now_ms() + 31 * DAY_MS

    counted = purge(clients, settings, later, dry_run=True)
    assert counted.purged_users == 1 and versions_under(clients, settings, "u1/")

    deletes = record_params(clients.s3, "DeleteObjects")
    counts = purge(clients, settings, later)

    assert counts.purged_users == 1 and counts.groups_removed == 1
    # 4 versions of the 3 files, 1 of a file the user had removed, and 4 delete markers
    assert counts.versions_removed == 9
    assert all("VersionId" in o for call in deletes for o in call["Delete"]["Objects"])
    assert versions_under(clients, settings, "u1/") == []
    assert len(versions_under(clients, settings, "u1x/")) == 1
    assert manifests(clients, settings) == []
    assert [e["event"] for e in ledger(clients, settings, "u1")] == [
        "deleted",
        "verified",
        "purged",
    ]
    refused = restore(clients, settings, "u1")
    assert refused["status"] == "refused" and refused["reason"].startswith("purged")
    assert purge(clients, settings, later).purged_users == 0  # nothing twice
    assert len(ledger(clients, settings, "u1")) == 3


def test_purge_neither_waits_for_nor_purges_a_user_given_back(aws):
    clients, settings = aws
    as_of = now_ms()
    seed(clients, settings, as_of)
    put_items(clients.dynamodb, settings.users_table, [delete_candidate("u2", as_of)])
    put_files(clients.s3, settings.public_bucket_name, "u2/", 2)
    versions = versions_under(clients, settings, "u1/")

    outcomes = run_cascade(
        clients,
        settings,
        as_of,
        ["u1", "u2"],
        before_final_delete=lambda: comes_back(clients, settings),
    )
    assert outcome_of(outcomes, "u1")["outcome"] == KEPT
    assert outcome_of(outcomes, "u2")["outcome"] == DELETED
    assert len({key.rsplit("/", 1)[0] for key in manifests(clients, settings)}) == 1

    counts = purge(clients, settings, now_ms() + 31 * DAY_MS)

    assert (counts.purged_users, counts.waiting_users, counts.groups_removed) == (1, 0, 1)
    assert manifests(clients, settings) == [] and journals(clients, settings) == []
    assert versions_under(clients, settings, "u2/") == []
    assert keys_under(clients.s3, settings.public_bucket_name, "u1/") == sorted(FILES)
    assert versions_under(clients, settings, "u1/") == versions
    assert ledger(clients, settings, "u1") == []


def test_ledger_of_a_long_odd_id_stays_inside_its_own_folder(aws):
    clients, settings = aws
    as_of = now_ms()
    odd = (".." + "é" * 300 + "x" * 1000)[:1000]  # valid: no '/', 1,000 characters
    put_items(clients.dynamodb, settings.users_table, [delete_candidate(odd, as_of)])
    put_files(clients.s3, settings.public_bucket_name, f"{odd}/", 1)

    assert outcome_of(run_cascade(clients, settings, as_of, [odd]), odd)["outcome"] == DELETED

    events = ledger(clients, settings, odd)
    assert [(e["event"], e["user_id"]) for e in events] == [("deleted", odd), ("verified", odd)]
    assert events[0]["files"] == 1
    folders = {key.split("/")[1] for key in archive(clients, settings).keys("ledger/")}
    assert len(folders) == 1 and len(folders.pop()) == 64
    assert restore(clients, settings, odd)["status"] == "restored"
    assert [e["event"] for e in ledger(clients, settings, odd)] == [
        "deleted",
        "verified",
        "restored",
    ]
