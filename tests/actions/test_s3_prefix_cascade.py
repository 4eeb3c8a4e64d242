"""Stores of kind `s3_prefix` other than the app's own files through the whole cascade against
moto: a second bucket and a second prefix of the public bucket. With a restore window each
current object is hidden under a delete marker and its version recorded (the versions stay
until the purge); without one nothing is left under the folder. Neighbour folders untouched,
counted by store in the ledger, proved gone, given back to a user who came back, restored,
purged, and an object written late found by the proof and removed by the next run."""

from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.outcomes import DELETED, KEPT_PARTIAL
from cleanup_pipeline.core.data_map import load_data_map
from cleanup_pipeline.core.recovery import Manifest
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.aws_state import keys_under, put_files
from tests.support.cascade import outcome_of, run_cascade
from tests.support.data_maps import AVATARS_BUCKET, create_avatars_bucket, use_app_map_with
from tests.support.items import delete_candidate
from tests.support.recovery_world import (
    archive,
    assert_deleted_and_proved,
    assert_left_over,
    comes_back,
    comes_back_mid_cascade,
    journals,
    ledger,
    manifests,
    next_run,
    next_run_proves,
    purge_after_the_window,
    restore,
    seed,
    seeded,
    settle,
)

EXTRA = f"""
  avatars:
    bucket: {AVATARS_BUCKET}
    s3_prefix: "avatars/{{id}}/"
  thumbs:
    s3_prefix: "thumbs/{{id}}/"
"""
AVATARS = {"avatars/u1/face.png": b"\x89PNG face", "avatars/u1/sizes/big.png": bytes(range(256))}
THUMBS = {"thumbs/u1/face.png": b"thumb"}
COUNTS = {"files": 3, "features": 2, "scoreboards": 3, "avatars": 2, "thumbs": 1}


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png", Metadata={"k": key})


def make_world(clients: Any, settings: Any, *, versioned: bool = True) -> None:
    """The avatars bucket (versioned unless told) and the objects of u1 and its neighbours in
    both extra stores: an older version, and an object the user had deleted themselves."""
    s3, public = clients.s3, settings.public_bucket_name
    create_avatars_bucket(s3, versioned=versioned)
    if versioned:
        put(s3, AVATARS_BUCKET, "avatars/u1/face.png", b"older face")
        put(s3, AVATARS_BUCKET, "avatars/u1/gone.png", b"removed by the user")
        s3.delete_object(Bucket=AVATARS_BUCKET, Key="avatars/u1/gone.png")
    for key, body in AVATARS.items():
        put(s3, AVATARS_BUCKET, key, body)
    for key, body in THUMBS.items():
        put(s3, public, key, body)
    for key in ("avatars/u1x/face.png", "avatars/u10/face.png", "avatars/u1.png"):
        put(s3, AVATARS_BUCKET, key, b"neighbour")
    put(s3, public, "thumbs/u1x/face.png", b"neighbour")


@pytest.fixture
def world(aws, monkeypatch, tmp_path: Path):
    use_app_map_with(monkeypatch, tmp_path, EXTRA)
    return aws


def seeded_with_objects(world: Any, window: float, *, versioned: bool = True) -> Any:
    """`seeded`, then the extra stores' objects of u1 and its neighbours."""
    clients, settings, as_of = seeded(world, window)
    make_world(clients, settings, versioned=versioned)
    return clients, settings, as_of


def versions(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str, bool]]:
    """Every (key, version id, is a marker) under `prefix`, sorted."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(
        (v["Key"], v["VersionId"], kind == "DeleteMarkers")
        for page in pages
        for kind in ("Versions", "DeleteMarkers")
        for v in page.get(kind, [])
    )


def current(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Each current object under `prefix` with its version id."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    return {
        v["Key"]: v["VersionId"]
        for page in pages
        for v in page.get("Versions", [])
        if v["IsLatest"]
    }


def content(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, str], str]:
    got = s3.get_object(Bucket=bucket, Key=key)
    return got["Body"].read(), got["Metadata"], got["ContentType"]


def of_u1(read: Any, s3: Any, public: str) -> dict[str, Any]:
    """`read` (versions or current) of u1's folder in each extra store."""
    return {
        "avatars": read(s3, AVATARS_BUCKET, "avatars/u1/"),
        "thumbs": read(s3, public, "thumbs/u1/"),
    }


def neighbours(s3: Any, public: str) -> list[Any]:
    return [
        versions(s3, AVATARS_BUCKET, "avatars/u1x/"),
        versions(s3, AVATARS_BUCKET, "avatars/u10/"),
        versions(s3, AVATARS_BUCKET, "avatars/u1.png"),
        versions(s3, public, "thumbs/u1x/"),
    ]


@pytest.mark.parametrize("window", [30, 0])
def test_every_object_of_the_user_goes_is_counted_by_store_and_proved_gone(world, window) -> None:
    clients, settings, as_of = seeded_with_objects(world, window)
    s3, public = clients.s3, settings.public_bucket_name
    before, hidden = of_u1(versions, s3, public), of_u1(current, s3, public)
    around = neighbours(s3, public)
    listings = record_params(s3, "ListObjectVersions")
    deletes = record_params(s3, "DeleteObjects")

    outcomes = run_cascade(clients, settings, as_of, ["u1"])
    listed = [(p["Bucket"], p["Prefix"]) for p in listings if p["Prefix"] != "u1/"]
    removals = [d["Bucket"] for d in deletes]

    assert_deleted_and_proved(clients, settings, outcomes, COUNTS)
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1/") == []
    assert keys_under(s3, public, "thumbs/u1/") == []
    assert neighbours(s3, public) == around
    after = of_u1(versions, s3, public)
    if window:  # every version stays until the purge, each current one under a new marker
        for name, found in after.items():
            assert set(before[name]) < set(found)
            assert {k for k, _, marker in set(found) - set(before[name]) if marker} == set(
                hidden[name]
            )
        [manifest] = [
            Manifest.from_json(archive(clients, settings).read_json(key))
            for key in manifests(clients, settings)
        ]
        recorded = manifest.users[0].stores
        for name, objects in hidden.items():
            assert sorted((r["key"], r["version_id"]) for r in recorded[name]) == sorted(
                objects.items()
            )
    else:  # no version and no marker left
        assert after == {"avatars": [], "thumbs": []}
        assert manifests(clients, settings) == []
    # One listing of each folder to find, one to prove; no other listing of the extra stores.
    assert sorted(listed) == sorted([(AVATARS_BUCKET, "avatars/u1/"), (public, "thumbs/u1/")] * 2)
    # Hidden in one request per store; without a window one more removes the versions.
    assert removals.count(AVATARS_BUCKET) == (1 if window else 2)


def test_deletes_are_batched_by_the_thousand_across_the_batchs_users(world) -> None:
    clients, settings, as_of = seeded_with_objects(world, 0)
    put_items(
        clients.dynamodb, settings.users_table, [delete_candidate(u, as_of) for u in ("u2", "u3")]
    )
    put_files(clients.s3, AVATARS_BUCKET, "avatars/u2/", 1_001)
    put(clients.s3, AVATARS_BUCKET, "avatars/u3/face.png", b"u3")
    deletes = record_params(clients.s3, "DeleteObjects")

    outcomes = run_cascade(clients, settings, as_of, ["u1", "u2", "u3"])

    assert [outcome_of(outcomes, u)["outcome"] for u in ("u1", "u2", "u3")] == [DELETED] * 3
    requests = [len(d["Delete"]["Objects"]) for d in deletes if d["Bucket"] == AVATARS_BUCKET]
    assert max(requests) <= 1_000
    # 1,004 objects hidden in 2 requests shared by the 3 users, then every version and marker
    # of their folders (2,011, older ones and the user's own deleted file too) removed in 3.
    assert requests == [1_000, 4, 1_000, 1_000, 11]
    assert [v[0] for v in versions(clients.s3, AVATARS_BUCKET, "avatars/")] == [
        "avatars/u1.png",
        "avatars/u10/face.png",
        "avatars/u1x/face.png",
    ]
    deleted = {u: ledger(clients, settings, u)[0]["stores"]["avatars"] for u in ("u2", "u3")}
    assert deleted == {"u2": 1_001, "u3": 1}


def test_a_restore_brings_each_object_back_byte_for_byte_but_one_written_since(world) -> None:
    clients, settings, as_of = seeded_with_objects(world, 30)
    s3, public = clients.s3, settings.public_bucket_name
    was = of_u1(current, s3, public)
    run_cascade(clients, settings, as_of, ["u1"])
    put(s3, AVATARS_BUCKET, "avatars/u1/face.png", b"a new face")  # uploaded since
    hidden = versions(s3, AVATARS_BUCKET, "avatars/u1/")

    preview = restore(clients, settings, "u1", dry_run=True)
    assert (preview["restored"]["avatars"], preview["restored"]["thumbs"]) == (2, 1)
    assert versions(s3, AVATARS_BUCKET, "avatars/u1/") == hidden  # a dry run writes nothing

    summary = restore(clients, settings, "u1")

    assert summary["status"] == "restored"
    assert (summary["restored"]["avatars"], summary["restored"]["thumbs"]) == (1, 1)
    assert summary["skipped"]["avatars"] == 1
    assert summary["skipped"]["why"]["avatars"] == [
        "avatars/u1/face.png: replaced by a newer version; left as is"
    ]
    now = current(s3, AVATARS_BUCKET, "avatars/u1/")
    assert now["avatars/u1/sizes/big.png"] == was["avatars"]["avatars/u1/sizes/big.png"]
    assert content(s3, AVATARS_BUCKET, "avatars/u1/sizes/big.png") == (
        bytes(range(256)),
        {"k": "avatars/u1/sizes/big.png"},
        "image/png",
    )
    assert content(s3, AVATARS_BUCKET, "avatars/u1/face.png")[0] == b"a new face"
    assert current(s3, public, "thumbs/u1/") == was["thumbs"]
    assert content(s3, public, "thumbs/u1/face.png") == (
        b"thumb",
        {"k": "thumbs/u1/face.png"},
        "image/png",
    )
    # The restored object's marker is gone: no marker is left above a current version.
    assert not [v for v in versions(s3, public, "thumbs/u1/") if v[2]]


@pytest.mark.parametrize("window", [30, 0])
def test_a_user_who_comes_back_mid_cascade_gets_every_object_back(world, window) -> None:
    clients, settings, as_of = seeded_with_objects(world, window)
    s3, public = clients.s3, settings.public_bucket_name
    was = of_u1(current, s3, public)
    before = versions(s3, AVATARS_BUCKET, "avatars/u1/")

    comes_back_mid_cascade(clients, settings, as_of)

    assert of_u1(current, s3, public) == was
    assert versions(s3, AVATARS_BUCKET, "avatars/u1/") == before  # the markers made are gone
    assert content(s3, AVATARS_BUCKET, "avatars/u1/sizes/big.png")[0] == bytes(range(256))


def test_a_bucket_keeping_no_versions_empties_the_folder_and_names_files_lost_to_one_who_came_back(
    world,
) -> None:
    """Without a restore window a bucket need not keep versions: the objects go at once, the
    one case where a user who comes back loses files, and the outcome names them."""
    clients, settings, as_of = seeded_with_objects(world, 0, versioned=False)
    s3 = clients.s3

    outcomes = run_cascade(
        clients, settings, as_of, ["u1"], before_final_delete=lambda: comes_back(clients, settings)
    )

    row = outcome_of(outcomes, "u1")
    assert row["outcome"] == KEPT_PARTIAL
    for key in AVATARS:
        assert f"{key} (avatars)" in row["error"]
    assert current(s3, settings.public_bucket_name, "thumbs/u1/") != {}  # versioned: back

    put(s3, AVATARS_BUCKET, "avatars/u1/face.png", b"uploaded again")
    seed(clients, settings, as_of)  # a delete candidate again
    outcomes = run_cascade(clients, settings, as_of, ["u1"], run_id="later-run")

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert versions(s3, AVATARS_BUCKET, "avatars/u1/") == []
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1x/") == ["avatars/u1x/face.png"]


def test_the_purge_removes_every_version_and_marker_of_the_extra_stores(world) -> None:
    clients, settings, as_of = seeded_with_objects(world, 30)
    s3, public = clients.s3, settings.public_bucket_name
    around = neighbours(s3, public)
    run_cascade(clients, settings, as_of, ["u1"])
    assert versions(s3, AVATARS_BUCKET, "avatars/u1/") != []

    counts = purge_after_the_window(clients, settings, data_map=load_data_map(settings))

    assert counts.failed_users == 0
    assert versions(s3, AVATARS_BUCKET, "avatars/u1/") == []
    assert versions(s3, public, "thumbs/u1/") == []
    assert versions(s3, public, "u1/") == []
    assert neighbours(s3, public) == around
    events = ledger(clients, settings, "u1")
    # Older versions and the markers too: the user's own deleted file, each hidden one.
    assert events[-1]["versions"] > COUNTS["files"] + COUNTS["avatars"] + COUNTS["thumbs"]


@pytest.mark.parametrize("window", [30, 0])
def test_an_object_written_after_the_listing_fails_the_user_and_the_next_run_removes_it(
    world, window
) -> None:
    clients, settings, as_of = seeded_with_objects(world, window)
    s3 = clients.s3
    done: list[bool] = []

    def app_writes(**_: Any) -> None:
        if not done:
            done.append(True)
            put(s3, AVATARS_BUCKET, "avatars/u1/late.png", b"written late")

    # After every folder was listed, at the first removal: the proof finds it.
    event = "after-call.s3.DeleteObjects"
    s3.meta.events.register(event, app_writes)
    try:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])
    finally:
        s3.meta.events.unregister(event, app_writes)

    assert_left_over(clients, settings, outcomes, "leftover in avatars")
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1/") == ["avatars/u1/late.png"]

    next_run_proves(clients, settings, as_of, COUNTS)

    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1/") == []
    if not window:
        assert versions(s3, AVATARS_BUCKET, "avatars/u1/") == []
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1x/") == ["avatars/u1x/face.png"]


class Crash(BaseException):
    """The process running the batch died here."""


def dies_at_the_user_item(clients: Any, settings: Any, as_of: int) -> None:
    """The cascade, dying right before the user item's delete: every store acted on."""

    def crash(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == settings.users_table:
            raise Crash

    event = "before-parameter-build.dynamodb.DeleteItem"
    clients.dynamodb.meta.events.register(event, crash)
    try:
        with pytest.raises(Crash):
            run_cascade(clients, settings, as_of, ["u1"], run_id="died")
    finally:
        clients.dynamodb.meta.events.unregister(event, crash)


@pytest.mark.parametrize("window", [30, 0])
def test_a_run_that_died_is_given_back_or_finished_by_the_next(world, window) -> None:
    """The run died with every object hidden: the next gives them back to a user who came
    back meanwhile; to one still a candidate, it finishes the deletion, nothing left behind."""
    clients, settings, as_of = seeded_with_objects(world, window)
    s3 = clients.s3
    was = current(s3, AVATARS_BUCKET, "avatars/u1/")
    dies_at_the_user_item(clients, settings, as_of)
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1/") == []
    comes_back(clients, settings)

    settled = settle(clients, settings, as_of, "next-run")

    assert (settled.given_back, settled.failed) == (["u1"], {})
    assert current(s3, AVATARS_BUCKET, "avatars/u1/") == was
    assert keys_under(s3, settings.public_bucket_name, "thumbs/u1/") == sorted(THUMBS)

    seed(clients, settings, as_of)  # a delete candidate again: the next deletion
    dies_at_the_user_item(clients, settings, as_of)
    outcomes = next_run(clients, settings, as_of, ["u1"], "third-run")

    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert keys_under(s3, AVATARS_BUCKET, "avatars/u1/") == []
    assert (versions(s3, AVATARS_BUCKET, "avatars/u1/") == []) == (window == 0)
    # The dead run's journal is let go by a further run, which finds the deletion proved.
    assert settle(clients, settings, as_of, "fourth-run").failed == {}
    assert journals(clients, settings) == []
    deleted, verified = ledger(clients, settings, "u1")
    assert (deleted["stores"]["avatars"], verified["stores"]["avatars"]) == (2, 0)
