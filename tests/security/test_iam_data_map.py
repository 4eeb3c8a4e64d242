"""The IAM policy rendered from the data map: per store exactly the actions its kind and action
need, on its own table, index or bucket prefix; the account listings only with coverage."""

import json
from typing import Any

import pytest

from cleanup_pipeline.actions import purge
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.core.recovery import DAY_MS
from cleanup_pipeline.local.batch_write import batch_write
from tests.support import recording
from tests.support.data_maps import (
    APP_MAP,
    AVATARS_BUCKET,
    EVERY_KIND_MAP,
    add_extra_stores,
    create_every_kind_stores,
    create_table,
    put_sessions_and_comments,
)
from tests.support.iam import Request, allowed, denied, requests_for, unused_grants
from tests.support.jobs import metadata, restore_with_service_recording, run_with_service_recording
from tests.support.policy_render import ACCOUNT, full_policy, render_policy, rendered_policy
from tests.support.world import DELETED, seed_world

TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table"
# Written by the app since the run: the restore reads it to tell it from its own put.
SESSION_WRITTEN_SINCE = {"userId": {"S": DELETED[0]}, "sessionId": {"S": "s1"}, "new": {"S": "yes"}}


def by_sid(policy: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


@pytest.fixture
def every_kind(monkeypatch) -> dict[str, dict]:
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    return by_sid(rendered_policy())


def _db(*actions: str) -> list[str]:
    return [f"dynamodb:{action}" for action in actions]


def test_each_store_gets_exactly_what_its_kind_needs(every_kind) -> None:
    tables = ["users", "emails", "holds", "features", "drafts", "scoreboards", "teams"]
    avatars = f"arn:aws:s3:::{AVATARS_BUCKET}"
    expected = {  # statement: its actions and resources
        "ListAvatarsFolders": ("s3:ListBucketVersions", avatars),
        "DeleteAvatarsFiles": (
            ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            f"{avatars}/avatars/*/*",
        ),
        "FeaturesTable": (_db("Scan", "BatchGetItem", "UpdateItem"), f"{TABLE}/features"),
        "DraftsTable": (_db("Scan", "BatchGetItem", "DeleteItem", "PutItem"), f"{TABLE}/drafts"),
        "ScoreboardsTable": (_db("GetItem", "UpdateItem"), f"{TABLE}/scoreboards"),
        "TeamsTable": (_db("Scan", "BatchGetItem", "UpdateItem"), f"{TABLE}/teams"),
        "SessionsTable": (
            _db("Query", "BatchGetItem", "BatchWriteItem", "PutItem"),
            f"{TABLE}/sessions",
        ),
        "CommentsTable": (_db("BatchGetItem", "BatchWriteItem", "PutItem"), f"{TABLE}/comments"),
        "CommentsIndex": ("dynamodb:Query", f"{TABLE}/comments/index/byAuthor"),
        "DescribeTables": (
            "dynamodb:DescribeTable",
            [f"{TABLE}/{name}" for name in [*tables, "sessions", "comments"]],
        ),
        "CheckBucketVersioning": (
            "s3:GetBucketVersioning",
            ["arn:aws:s3:::increaser-public", avatars],
        ),
        render_policy.COVERAGE_SID: (["dynamodb:ListTables", "s3:ListAllMyBuckets"], "*"),
    }

    granted = {sid: (every_kind[sid]["Action"], every_kind[sid]["Resource"]) for sid in expected}
    assert granted == expected
    assert every_kind["ListAvatarsFolders"]["Condition"] == {
        "StringLike": {"s3:prefix": "avatars/*/"}
    }


def test_the_policy_denies_what_no_store_needs(monkeypatch) -> None:
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    policy = full_policy()

    def s3(action: str, arn: str, **context: str) -> Request:
        return Request(action, f"arn:aws:s3:::{arn}", context)

    def db(action: str, resource: str) -> Request:
        return Request(action, f"{TABLE}/{resource}")

    for request in (
        s3("s3:ListBucketVersions", AVATARS_BUCKET, **{"s3:prefix": "avatars/u1/"}),
        s3("s3:DeleteObjectVersion", f"{AVATARS_BUCKET}/avatars/u1/a.png"),
        db("dynamodb:Query", "sessions"),
        db("dynamodb:Query", "comments/index/byAuthor"),
        db("dynamodb:DeleteItem", "drafts"),
        db("dynamodb:Scan", "teams"),
    ):
        assert allowed(policy, request), request
    for request in (
        s3("s3:ListBucketVersions", AVATARS_BUCKET, **{"s3:prefix": "other/"}),
        s3("s3:ListBucketVersions", AVATARS_BUCKET),
        s3("s3:DeleteObject", f"{AVATARS_BUCKET}/index.html"),
        s3("s3:ListBucket", AVATARS_BUCKET),  # the whole bucket
        s3("s3:GetObject", f"{AVATARS_BUCKET}/avatars/u1/a.png"),
        db("dynamodb:Query", "comments"),  # through the index only
        db("dynamodb:Query", "comments/index/byPost"),
        db("dynamodb:Scan", "sessions"),
        db("dynamodb:Scan", "comments"),
        db("dynamodb:DeleteItem", "features"),  # its attribute is removed, the item stays
        db("dynamodb:DeleteItem", "teams"),
        db("dynamodb:Scan", "scoreboards"),  # its items are named
        db("dynamodb:UpdateItem", "sessions"),
        db("dynamodb:DescribeTable", "invoices"),
        db("dynamodb:DeleteTable", "sessions"),
    ):
        assert not allowed(policy, request), request


def test_the_account_listings_are_granted_only_with_coverage(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    text = json.dumps(rendered_policy())
    assert render_policy.COVERAGE_SID not in text and "ListAllMyBuckets" not in text
    covered = tmp_path / "map.yaml"
    covered.write_text(APP_MAP.read_text() + "\ncoverage: ['increaser-*']\n")
    monkeypatch.setenv(MAP_VARIABLE, str(covered))
    assert render_policy.COVERAGE_SID in by_sid(rendered_policy())


def test_the_app_map_renders_the_builtin_policy(monkeypatch) -> None:
    builtin = rendered_policy()
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    assert rendered_policy() == builtin


def test_a_store_named_like_a_job_statement_keeps_both_and_wildcards_are_refused(
    monkeypatch, tmp_path
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("stores: {emails: {table: mail, partition_key: userId}}\n")
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    sids = by_sid(rendered_policy())
    assert sids["EmailsTable"]["Resource"] == f"{TABLE}/emails"
    assert sids["StoreEmailsTable"]["Resource"] == f"{TABLE}/mail"
    path.write_text("stores: {sessions: {table: 'sess*', partition_key: userId}}\n")
    with pytest.raises(ValueError, match=r"must not contain .*stores\.sessions"):
        rendered_policy()


def _allowed_calls() -> tuple[dict, list[Request]]:
    """The policy rendered from the map in force and the requests of every recorded call,
    after checking that the policy allows each of them."""
    policy = rendered_policy()
    requests = [r for call in recording.SERVICE_CALLS for r in requests_for(call, ACCOUNT)]
    assert denied(policy, requests) == []
    return policy, requests


def _run_and_restore(db: Any, *since: tuple[str, dict[str, Any]]) -> tuple[dict, list[Request]]:
    """A recorded run, what the app wrote since (`since`: each a table and an item), a recorded
    restore of the first deleted user; then the policy and requests of `_allowed_calls`."""
    assert run_with_service_recording().success
    for table, item in since:
        db.put_item(TableName=table, Item=item)
    assert restore_with_service_recording(DELETED[0]).success
    return _allowed_calls()


@pytest.mark.usefixtures("fresh_recording")
def test_every_call_to_partition_key_stores_is_allowed_and_each_of_their_grants_used(
    aws, monkeypatch, tmp_path
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "partition_key")
    put_sessions_and_comments(db, DELETED)

    policy, requests = _run_and_restore(db, ("sessions", SESSION_WRITTEN_SINCE))
    own = [u for u in unused_grants(policy, requests) if u.startswith(("Sessions", "Comments"))]
    assert own == []


@pytest.mark.usefixtures("fresh_recording")
def test_every_call_to_list_stores_is_allowed_and_each_of_their_grants_used(
    aws, monkeypatch, tmp_path
) -> None:
    """A list store of named items and one without items (a table of composite key, scanned
    once a run): the run, a restore that finds an entry of the user back in one list, and
    nothing denied."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "list")

    def entries(key: str, users: list[str]) -> dict:
        return {"L": [{"M": {key: {"S": u}}} for u in users]}

    batch_write(db, "leaderboards", [{"board": {"S": "daily"}, "players": entries("pid", DELETED)}])
    batch_write(
        db,
        "teams",
        [
            {"orgId": {"S": "o1"}, "teamId": {"S": f"t{n}"}, "members": entries("userId", DELETED)}
            for n in range(2)
        ],
    )

    # The user is in one team again: the restore reads it and skips that team.
    again = {"orgId": {"S": "o1"}, "teamId": {"S": "t0"}, "members": entries("userId", DELETED)}
    policy, requests = _run_and_restore(db, ("teams", again))
    own = [u for u in unused_grants(policy, requests) if u.startswith(("Leaderboards", "Teams"))]
    assert own == []
    assert by_sid(policy)["TeamsTable"]["Action"] == [
        "dynamodb:Scan",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ]


@pytest.mark.usefixtures("fresh_recording")
def test_every_call_to_s3_prefix_stores_is_allowed_and_each_of_their_grants_used(
    aws, monkeypatch, tmp_path
) -> None:
    """A run, a restore and the run that purges once the window ended, with a second bucket's
    folders and a second prefix of the public bucket: nothing denied, every grant of theirs
    used."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    s3 = clients.s3
    add_extra_stores(clients, monkeypatch, tmp_path, "s3_prefix")
    for user_id in DELETED:
        s3.put_object(Bucket=AVATARS_BUCKET, Key=f"avatars/{user_id}/a.png", Body=b"a")
        s3.put_object(Bucket=settings.public_bucket_name, Key=f"thumbs/{user_id}/a.png", Body=b"a")

    assert run_with_service_recording().success
    assert restore_with_service_recording(DELETED[0]).success
    after_the_window = purge.now_ms() + 31 * DAY_MS
    monkeypatch.setattr(purge, "now_ms", lambda: after_the_window)
    purging = run_with_service_recording()
    assert purging.success
    assert metadata(purging, "purged_deletions")["purged_users"] == len(DELETED) - 1
    left = s3.list_object_versions(Bucket=AVATARS_BUCKET, Prefix="avatars/")
    assert {v["Key"] for v in left.get("Versions", [])} == {f"avatars/{DELETED[0]}/a.png"}
    assert left.get("DeleteMarkers", []) == []

    policy, requests = _allowed_calls()
    unused = unused_grants(policy, requests)
    own = ("ListAvatars", "DeleteAvatars", "ListThumbs", "DeleteThumbs")
    assert [u for u in unused if u.startswith(own)] == []
    versioning = f"CheckBucketVersioning: s3:GetBucketVersioning on arn:aws:s3:::{AVATARS_BUCKET}"
    assert versioning not in unused


@pytest.mark.usefixtures("fresh_recording")
def test_every_call_to_attribute_stores_is_allowed_and_each_of_their_grants_used(
    aws, monkeypatch, tmp_path
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    db = clients.dynamodb
    add_extra_stores(clients, monkeypatch, tmp_path, "attribute")
    batch_write(
        db,
        "drafts",
        [
            {"space": {"S": n}, "draftId": {"S": u}, "authorId": {"S": u}}
            for u in DELETED
            for n in "ab"
        ],
    )
    batch_write(
        db,
        "likes",
        [{"id": {"S": f"l{n}-{u}"}, "likedBy": {"S": u}} for u in DELETED for n in (1, 2)],
    )

    # Written by the app since: the restore reads each to tell it from its own put.
    user_id = DELETED[0]
    policy, requests = _run_and_restore(
        db,
        ("drafts", {"space": {"S": "a"}, "draftId": {"S": user_id}, "authorId": {"S": "someone"}}),
        ("likes", {"id": {"S": f"l1-{user_id}"}, "likedBy": {"S": "x"}}),
    )
    own = [u for u in unused_grants(policy, requests) if u.startswith(("Drafts", "Likes"))]
    assert own == []


def test_exports_are_granted_only_once_declared_and_only_in_the_users_folders(
    monkeypatch,
) -> None:
    """With CLEANUP_EXPORT_DIR the policy lists and reads each folder store's user folders and,
    for an s3:// location, writes encrypted zips there; without it, none of this."""
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    assert "Export" not in json.dumps(rendered_policy())
    monkeypatch.setenv("CLEANUP_EXPORT_DIR", "s3://increaser-ops/exports")
    policy = rendered_policy()
    sids = by_sid(policy)
    assert sids["ExportListAvatarsFiles"]["Condition"] == {
        "StringLike": {"s3:prefix": "avatars/*/"}
    }
    assert sids["ExportReadUserFiles"]["Resource"] == "arn:aws:s3:::increaser-public/*/*"

    def s3(action: str, arn: str, **context: str) -> Request:
        return Request(action, f"arn:aws:s3:::{arn}", context)

    sse = {"s3:x-amz-server-side-encryption": "AES256"}
    for request in (
        s3("s3:GetObject", f"{AVATARS_BUCKET}/avatars/u1/a.png"),
        s3("s3:ListBucket", AVATARS_BUCKET, **{"s3:prefix": "avatars/u1/"}),
        s3("s3:PutObject", "increaser-ops/exports/abc-20261208T000000000Z.zip", **sse),
    ):
        assert allowed(policy, request), request
    for request in (
        s3("s3:GetObject", f"{AVATARS_BUCKET}/index.html"),
        s3("s3:ListBucket", AVATARS_BUCKET),
        s3("s3:PutObject", "increaser-ops/exports/abc.zip"),  # not encrypted
        s3("s3:PutObject", "increaser-ops/cleanup/abc.zip", **sse),
        s3("s3:PutObject", "increaser-ops/exports/abc.json", **sse),
    ):
        assert not allowed(policy, request), request
    monkeypatch.setenv("CLEANUP_EXPORT_DIR", "/srv/exports")
    assert "WriteExports" not in by_sid(rendered_policy())


@pytest.mark.usefixtures("fresh_recording")
def test_every_call_of_a_run_and_a_restore_with_the_every_kind_map_is_allowed(
    aws, monkeypatch
) -> None:
    """The every-kind example itself, coverage included: a run that deletes from every store
    and a restore into every store need nothing the policy rendered from it does not grant,
    and every grant of its stores is used."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_every_kind_stores(clients, versioned=True)
    db, s3 = clients.dynamodb, clients.s3
    for user_id in DELETED:
        s3.put_object(Bucket=AVATARS_BUCKET, Key=f"avatars/{user_id}/me.png", Body=b"a")
    batch_write(db, "drafts", [{"id": {"S": f"d-{u}"}, "authorId": {"S": u}} for u in DELETED])
    members = {"L": [{"M": {"userId": {"S": u}}} for u in DELETED]}
    batch_write(db, "teams", [{"id": {"S": "t1"}, "members": members}])
    put_sessions_and_comments(db, DELETED)
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))

    policy, requests = _run_and_restore(db, ("sessions", SESSION_WRITTEN_SINCE))
    stores = ("Avatars", "Drafts", "Teams", "Sessions", "Comments")
    unused = [u for u in unused_grants(policy, requests) if any(s in u for s in stores)]
    assert unused == []


@pytest.mark.usefixtures("fresh_recording")
def test_a_map_without_the_apps_features_and_scoreboards_needs_no_grant_on_them(
    aws, monkeypatch, tmp_path
) -> None:
    """The app's own stores are declared like any other: a map that leaves out the features and
    scoreboards and keeps the files in another folder renders no grant on those tables or the
    files' usual folders, and a run and a restore need nothing more."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_table(clients.dynamodb, "sessions", "userId", "sessionId")
    for user_id in DELETED:
        clients.s3.put_object(
            Bucket=settings.public_bucket_name, Key=f"media/{user_id}/a.png", Body=b"a"
        )
    batch_write(
        clients.dynamodb,
        "sessions",
        [{"userId": {"S": u}, "sessionId": {"S": "s1"}} for u in DELETED],
    )
    path = tmp_path / "map.yaml"
    path.write_text(
        'stores:\n  files: {s3_prefix: "media/{id}/"}\n'
        "  sessions: {table: sessions, partition_key: userId}\n"
    )
    monkeypatch.setenv(MAP_VARIABLE, str(path))

    assert run_with_service_recording().success
    assert restore_with_service_recording(DELETED[0]).success

    policy, requests = _allowed_calls()
    text = json.dumps(policy)
    assert f"table/{settings.features_table}" not in text
    assert f"table/{settings.scoreboards_table}" not in text
    folders = {r["Resource"] for r in policy["Statement"] if "Files" in r["Sid"]}
    assert folders and all("/media/*/" in str(resource) for resource in folders)
    assert [u for u in unused_grants(policy, requests) if "Files" in u.split(":")[0]] == []
