"""The access export: one zip of everything a user has in every store of the data map, checked
byte for byte, private, streamed, and read without a write to the app's stores."""

import io
import json
import os
import stat
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.export import (
    ExportError,
    check_destination,
    export_name,
    export_requested,
    export_user,
    files_folders,
)
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.aws.requests_table import new_request_id, scan_requests
from cleanup_pipeline.core.data_map import MAP_VARIABLE, builtin_map, load_data_map
from cleanup_pipeline.core.requests import Request, new_request
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import client_error, fail_when
from tests.support.data_maps import AVATARS_BUCKET, EVERY_KIND_MAP, create_every_kind_stores
from tests.support.world import seed_world

NOW = 1_790_000_000_123


def everything(clients: AwsClients) -> dict[str, Any]:
    """Every item of every table and every version of every object, with its bytes."""
    db, s3 = clients.dynamodb, clients.s3
    state: dict[str, Any] = {
        table: sorted(
            (json.dumps(i, sort_keys=True) for i in db.scan(TableName=table)["Items"]),
        )
        for table in db.list_tables()["TableNames"]
    }
    for found in s3.list_buckets()["Buckets"]:
        name = found["Name"]
        versions = s3.list_object_versions(Bucket=name)
        state[f"s3://{name}"] = sorted(
            (v["Key"], v["VersionId"], v["IsLatest"]) for v in versions.get("Versions", [])
        ) + sorted((m["Key"], m["VersionId"]) for m in versions.get("DeleteMarkers", []))
    return state


def read_zip(path: Path | bytes) -> dict[str, bytes]:
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with zipfile.ZipFile(source) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def put(clients: AwsClients, bucket: str, key: str, body: bytes) -> None:
    clients.s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_the_builtin_map_exports_the_user_item_files_features_and_scoreboards(
    aws, tmp_path
) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    bucket = settings.public_bucket_name
    # Objects of every shape: binary, empty, nested, beside a folder marker and an old version.
    binary = bytes(range(256)) * 40
    put(clients, bucket, "u1/photos/a.jpg", binary)
    put(clients, bucket, "u1/empty.txt", b"")
    put(clients, bucket, "u1/photos/", b"")
    put(clients, bucket, "u1/file-0000.txt", b"second version")
    put(clients, bucket, "u10/not-u1.txt", b"someone else")
    before = everything(clients)

    out = tmp_path / "exports" / "case-12"
    exported = export_user(clients, settings, builtin_map(settings), "u1", str(out), NOW)

    assert everything(clients) == before  # only reads
    assert exported.location == str(out / export_name("u1", NOW))
    files = read_zip(Path(exported.location))
    objects = {
        "u1/file-0000.txt": b"second version",
        "u1/file-0001.txt": b"x",
        "u1/file-0002.txt": b"x",
        "u1/photos/a.jpg": binary,
        "u1/empty.txt": b"",
    }
    assert {n: files[n] for n in files if n.startswith("files/")} == {
        f"files/{key.removeprefix('u1/')}": body for key, body in objects.items()
    }
    user = seeded.users["u1"]
    assert json.loads(files["user.json"]) == {
        "id": "u1",
        "email": user["email"]["S"],
        **{name: int(value["N"]) for name, value in user.items() if "N" in value},
    }
    listed = json.loads(files["stores/files.json"])
    assert {r["key"]: (r["size"], r["file"]) for r in listed} == {
        **{key: (len(body), f"files/{key[3:]}") for key, body in objects.items()},
        "u1/photos/": (0, None),  # a folder marker: listed, no file
    }
    features = json.loads(files["stores/features.json"])
    assert sorted(features, key=lambda f: f["item"]["id"]) == [
        {"item": {"id": "f-u1"}, "proposedBy": "u1"},
        {"item": {"id": "f-u1-2"}, "proposedBy": "u1"},
    ]
    boards = json.loads(files["stores/scoreboards.json"])
    assert sorted((b["item"]["id"], b["position"], b["entry"]["score"]) for b in boards) == [
        ("month", 0, 4),
        ("month", 1, 3),
        ("week", 1, 8),
    ]
    assert all(b["entry"]["id"] == "u1" and b["entry"]["name"] == "U1" for b in boards)
    counts = {"files": 6, "features": 2, "scoreboards": 3}
    assert exported.counts == counts
    manifest = json.loads(files["export.json"])
    assert manifest["stores"] == ["files", "features", "scoreboards"]
    assert manifest["counts"] == counts and manifest["exported_at_ms"] == NOW
    assert manifest["exported_at"].startswith("2026-") and manifest["files"] == {"files": "files/"}
    # Private: the folder 0700, the zip 0600, nothing else left in the folder.
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(exported.location).st_mode) == 0o600
    assert os.listdir(out) == [export_name("u1", NOW)]


def test_every_kind_of_store_exports_what_it_holds_for_the_user(aws, tmp_path, monkeypatch) -> None:
    """Items whole (a composite key; a secondary index; an attribute store deleting whole
    items), list entries with item and position (a table without named items), and a second
    bucket's files in a folder of their own."""
    clients, settings = aws
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    seed_world(clients, settings, big_folder=2)
    create_every_kind_stores(clients)
    db = clients.dynamodb
    sessions = [
        {"userId": {"S": "u1"}, "sessionId": {"S": "s1"}, "at": {"N": "1.5"}},
        {"userId": {"S": "u1"}, "sessionId": {"S": "s2"}, "tags": {"SS": ["a"]}},
        {"userId": {"S": "u10"}, "sessionId": {"S": "s1"}},
    ]
    batch_write(db, "sessions", sessions)
    batch_write(
        db,
        "comments",
        [
            {"id": {"S": "c1"}, "authorId": {"S": "u1"}, "text": {"S": "hi"}, "ok": {"BOOL": True}},
            {"id": {"S": "c2"}, "authorId": {"S": "u10"}, "text": {"S": "other"}},
        ],
    )
    batch_write(
        db,
        "drafts",
        [
            {"id": {"S": "d1"}, "authorId": {"S": "u1"}, "body": {"NULL": True}},
            {"id": {"S": "d2"}, "authorId": {"S": "u10"}},
        ],
    )
    members = {"L": [{"M": {"userId": {"S": u}, "role": {"S": "x"}}} for u in ("u10", "u1")]}
    batch_write(db, "teams", [{"id": {"S": "t1"}, "members": members}, {"id": {"S": "t2"}}])
    put(clients, AVATARS_BUCKET, "avatars/u1/me.png", b"\x89PNG avatar")
    put(clients, AVATARS_BUCKET, "avatars/u10/me.png", b"other")
    data_map = load_data_map(settings)
    before = everything(clients)

    exported = export_user(clients, settings, data_map, "u1", str(tmp_path / "out"), NOW)

    assert everything(clients) == before
    files = read_zip(Path(exported.location))

    def store(name: str) -> Any:
        return json.loads(files[f"stores/{name}.json"])

    assert sorted(store("sessions"), key=lambda i: i["sessionId"]) == [
        {"userId": "u1", "sessionId": "s1", "at": 1.5},
        {"userId": "u1", "sessionId": "s2", "tags": ["a"]},
    ]
    assert store("comments") == [{"id": "c1", "authorId": "u1", "text": "hi", "ok": True}]
    assert store("drafts") == [{"id": "d1", "authorId": "u1", "body": None}]
    assert store("teams") == [
        {"item": {"id": "t1"}, "position": 1, "entry": {"userId": "u1", "role": "x"}}
    ]
    assert files["stores/avatars/me.png"] == b"\x89PNG avatar"
    assert [r["file"] for r in store("avatars")] == ["stores/avatars/me.png"]
    assert sorted(n for n in files if n.startswith("files/")) == [
        "files/file-0000.txt",
        "files/file-0001.txt",
    ]
    assert json.loads(files["export.json"])["files"] == {
        "files": "files/",
        "avatars": "stores/avatars/",
    }
    assert exported.counts == {
        "files": 2,
        "avatars": 1,
        "features": 2,
        "drafts": 1,
        "scoreboards": 3,
        "teams": 1,
        "sessions": 2,
        "comments": 1,
    }


def test_without_a_store_named_files_the_first_folder_store_keeps_files(aws) -> None:
    _clients, settings = aws
    data_map = builtin_map(settings)
    renamed = type(data_map)(
        stores=tuple(
            type(s)(**{**s.__dict__, "name": "uploads"}) if s.name == "files" else s
            for s in data_map.stores
        )
    )
    assert files_folders(renamed) == {"uploads": "files/"}


def test_an_s3_destination_gets_one_encrypted_zip(aws, monkeypatch) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    clients.s3.create_bucket(Bucket="ops-exports")
    before = everything(clients)

    exported = export_user(
        clients, settings, builtin_map(settings), "u1", "s3://ops-exports/access/", NOW
    )

    key = f"access/{export_name('u1', NOW)}"
    assert exported.location == f"s3://ops-exports/{key}"
    listed = clients.s3.list_objects_v2(Bucket="ops-exports")["Contents"]
    assert [o["Key"] for o in listed] == [key]
    head = clients.s3.head_object(Bucket="ops-exports", Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    body = clients.s3.get_object(Bucket="ops-exports", Key=key)["Body"].read()
    assert read_zip(body)["files/file-0001.txt"] == b"x"
    after = everything(clients)
    assert {k: v for k, v in after.items() if k != "s3://ops-exports"} == {
        k: v for k, v in before.items() if k != "s3://ops-exports"
    }


def test_an_unknown_user_is_refused_and_nothing_is_written(aws, tmp_path) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"^no such user"):
        export_user(clients, settings, builtin_map(settings), "nobody", str(out), NOW)
    assert not out.exists()


def test_a_failure_midway_leaves_no_partial_zip(aws, tmp_path, monkeypatch) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    out = tmp_path / "out"
    out.mkdir()

    def fail(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("cleanup_pipeline.actions.export.shutil.copyfileobj", fail)
    with pytest.raises(OSError, match="disk full"):
        export_user(clients, settings, builtin_map(settings), "u1", str(out), NOW)
    assert os.listdir(out) == []


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("{reports}", "is inside CLEANUP_REPORTS_DIR"),
        ("{reports}/exports", "is inside CLEANUP_REPORTS_DIR"),
        ("{archive}", "is inside CLEANUP_ARCHIVE_DIR"),
        ("{file}", "exists and is not a folder"),
        ("  ", "is empty"),
        ("s3://", "names no bucket"),
    ],
)
def test_a_destination_that_is_a_file_or_the_jobs_own_folder_is_refused(
    tmp_path, destination: str, message: str
) -> None:
    settings = load_settings()
    (tmp_path / "a-file").write_text("not a folder")
    where = destination.format(
        reports=settings.reports_location,
        archive=settings.archive_location,
        file=tmp_path / "a-file",
    )
    with pytest.raises(ExportError, match=message):
        check_destination(where, settings)


@pytest.mark.parametrize(
    ("destination", "refused"),
    [
        ("s3://ops/cleanup", True),
        ("s3://ops/cleanup/exports", True),
        ("s3://ops/archive/", True),
        ("s3://ops", True),  # holds both
        ("s3://ops/exports", False),
        ("s3://ops/cleanup-exports", False),
        ("s3://other/cleanup", False),
    ],
)
def test_an_s3_destination_in_the_reports_or_archive_location_is_refused(
    monkeypatch, destination: str, refused: bool
) -> None:
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", "s3://ops/cleanup")
    monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", "s3://ops/archive")
    settings: Settings = load_settings()
    if refused:
        with pytest.raises(ExportError, match="overlaps CLEANUP_"):
            check_destination(destination, settings)
    else:
        check_destination(destination, settings)


def test_a_large_folder_is_streamed_not_held_in_memory(aws, tmp_path) -> None:
    """200 objects of 256 KiB (50 MiB): the export's peak of Python memory stays far below the
    folder's size (one chunk of one object at a time)."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    size, count = 256 * 1024, 200
    for n in range(count):
        put(clients, settings.public_bucket_name, f"u1/big/{n:04d}.bin", bytes([n % 256]) * size)
    tracemalloc.start()
    try:
        exported = export_user(
            clients, settings, builtin_map(settings), "u1", str(tmp_path / "out"), NOW
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exported.counts["files"] == count + 1
    assert peak < size * count / 10, f"peak {peak:,} bytes"
    with zipfile.ZipFile(exported.location) as archive:
        assert archive.read("files/big/0007.bin") == bytes([7]) * size


def _request(user_id: str = "u1") -> Request:
    """A new export request of `user_id`, not stored yet."""
    return new_request(
        new_request_id(), user_id, "export", now=NOW, deadline_days=30, ref="ticket 9"
    )


def _stored(clients: AwsClients, settings: Settings) -> list[Request]:
    assert settings.requests_table is not None
    return scan_requests(clients.dynamodb, settings.requests_table)


def _on_requests(settings: Settings) -> Any:
    return lambda params: params.get("TableName") == settings.requests_table


def test_the_export_request_is_recorded_open_before_the_zip_and_done_once_it_is_there(
    aws, tmp_path
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    out = tmp_path / "out"
    seen: list[tuple[str, list[str]]] = []

    def look(**_: Any) -> None:  # after each write to the requests table: the zip, if any
        [stored] = _stored(clients, settings)
        seen.append((stored.status, sorted(os.listdir(out)) if out.exists() else []))

    for operation in ("PutItem", "UpdateItem"):
        clients.dynamodb.meta.events.register(f"after-call.dynamodb.{operation}", look)
    request = _request()

    exported = export_requested(clients, settings, builtin_map(settings), request, str(out), NOW)

    name = export_name("u1", NOW)
    assert seen == [("open", []), ("done", [name])]
    assert exported.location == str(out / name)
    [stored] = _stored(clients, settings)
    assert (stored.id, stored.kind, stored.status, stored.reason) == (
        request.id,
        "export",
        "done",
        "exported",
    )
    assert stored.ref == "ticket 9" and stored.done_at is not None


def test_a_request_that_cannot_be_recorded_leaves_no_zip(aws, tmp_path) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    fail_when(
        clients.dynamodb,
        "PutItem",
        _on_requests(settings),
        lambda: client_error("AccessDeniedException", "PutItem"),
    )
    before = everything(clients)
    out = tmp_path / "out"

    request = _request()

    with pytest.raises(ExportError) as refused:
        export_requested(clients, settings, builtin_map(settings), request, str(out), NOW)

    assert str(refused.value).startswith(
        "no export written: the export request was not recorded: ClientError:"
    )
    assert "\n" not in str(refused.value)
    assert everything(clients) == before and not out.exists()


def test_a_zip_that_cannot_be_written_leaves_the_request_open_with_why(aws, tmp_path) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    out = tmp_path / "out"
    (out / export_name("u1", NOW)).mkdir(parents=True)  # the zip's name is taken: no rename
    request = _request()

    with pytest.raises(ExportError) as failed:
        export_requested(clients, settings, builtin_map(settings), request, str(out), NOW)

    message = str(failed.value)
    assert message.startswith("no export written: IsADirectoryError:")
    assert message.endswith(f"; export request {request.id} left open with that reason")
    [stored] = _stored(clients, settings)
    assert (stored.id, stored.status, stored.done_at) == (request.id, "open", None)
    assert stored.reason is not None and stored.reason.startswith(
        "no export written: IsADirectoryError:"
    )
    assert os.listdir(out) == [export_name("u1", NOW)]  # no partial zip beside it


def test_an_upload_that_fails_leaves_the_request_open_with_why(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    request = _request()

    with pytest.raises(ExportError, match=r"^no export written: .*NoSuchBucket"):
        export_requested(
            clients, settings, builtin_map(settings), request, "s3://no-such-bucket/x", NOW
        )

    [stored] = _stored(clients, settings)
    assert stored.status == "open" and stored.reason is not None
    assert "NoSuchBucket" in stored.reason


def test_a_zip_whose_request_cannot_be_marked_done_leaves_it_open_and_fails(aws, tmp_path) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=2)
    once: list[dict[str, Any]] = []
    fault = fail_when(
        clients.dynamodb,
        "UpdateItem",
        lambda params: _on_requests(settings)(params) and not once and not once.append(params),
        lambda: client_error("ProvisionedThroughputExceededException", "UpdateItem"),
    )
    out = tmp_path / "out"
    request = _request()

    with pytest.raises(ExportError) as failed:
        export_requested(clients, settings, builtin_map(settings), request, str(out), NOW)

    fault.remove()
    location = out / export_name("u1", NOW)
    assert str(failed.value).startswith(f"export written to {location}, but not marked done:")
    assert location.exists()
    [stored] = _stored(clients, settings)
    assert stored.status == "open" and stored.reason is not None
    assert stored.reason.startswith(f"export written to {location}, but not marked done:")
