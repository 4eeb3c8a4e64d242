"""The archive keeps personal data private: locally every file 0600 and every folder 0700 whatever
the umask, an archive left open tightened; on S3 every object encrypted at rest; and a reader
told when the archive it was pointed at does not exist."""

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.aws.archive_store import ArchiveLocationError, LocalArchive, open_archive
from cleanup_pipeline.core.recovery import LEDGER, MANIFESTS, PENDING, RESTORING
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.cascade import run_cascade
from tests.support.items import delete_candidate, now_ms
from tests.support.recovery_world import archive, restore, seed

ARCHIVE_BUCKET = "increaser-ops"


class Killed(BaseException):
    """The process died here."""


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def leave_every_kind_of_file(clients: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """u1 deleted (manifests, ledger) and restored by a restore that dies right after putting
    the item back (its record left); then u2's batch dies before removing its journal."""
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])

    def die(**_: Any) -> None:
        raise Killed

    clients.dynamodb.meta.events.register("after-call.dynamodb.PutItem", die)
    with pytest.raises(Killed):
        restore(clients, settings, "u1")
    clients.dynamodb.meta.events.unregister("after-call.dynamodb.PutItem", die)

    put_items(clients.dynamodb, settings.users_table, [delete_candidate("u2", as_of)])
    original = LocalArchive.remove

    def dies(self: LocalArchive, key: str) -> None:
        if key.startswith(PENDING):
            raise Killed
        original(self, key)

    with monkeypatch.context() as patch:
        patch.setattr(LocalArchive, "remove", dies)
        with pytest.raises(Killed):
            run_cascade(clients, settings, as_of, ["u2"])


def modes(root: Path) -> dict[str, int]:
    """The permission bits of the root and of everything under it."""
    paths = [root, *root.rglob("*")]
    return {str(path.relative_to(root)): stat.S_IMODE(path.lstat().st_mode) for path in paths}


def test_every_file_is_0600_and_every_folder_0700_whatever_the_umask(aws, monkeypatch, umask):
    clients, settings = aws
    root = Path(settings.archive_location)
    assert not root.exists()  # created by the job on its first write

    leave_every_kind_of_file(clients, settings, monkeypatch)

    found = modes(root)
    folders = {name: mode for name, mode in found.items() if (root / name).is_dir()}
    files = {name: mode for name, mode in found.items() if name not in folders}
    assert len(files) >= 4 and set(files.values()) == {0o600}, files
    assert "." in folders and set(folders.values()) == {0o700}, folders
    kinds = {key.split("/")[0] + "/" for key in archive(clients, settings).keys("")}
    assert kinds == {MANIFESTS, PENDING, LEDGER, RESTORING}


def test_an_archive_left_open_is_tightened_at_the_first_write(aws, monkeypatch):
    """As an earlier version left it under umask 022: folders 0755, files 0644."""
    clients, settings = aws
    root = Path(settings.archive_location)
    (root / "manifests" / "old").mkdir(parents=True)
    (root / "manifests" / "old" / "000.json").write_text("{}")
    (root / "notes.txt").write_text("kept")
    for path in (root, root / "manifests", root / "manifests" / "old"):
        path.chmod(0o755)
    for path in (root / "manifests" / "old" / "000.json", root / "notes.txt"):
        path.chmod(0o644)
    outside = root.parent / "outside.txt"
    outside.write_text("not the archive's")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)

    run_cascade(clients, settings, now_ms(), [])  # nothing to delete: no write, nothing changed
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    leave_every_kind_of_file(clients, settings, monkeypatch)

    found = {name: mode for name, mode in modes(root).items() if name != "link"}
    assert {m for n, m in found.items() if (root / n).is_dir()} == {0o700}
    assert {m for n, m in found.items() if not (root / n).is_dir()} == {0o600}
    assert (root / "notes.txt").read_text() == "kept"
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # a link is not followed


def test_an_archive_that_cannot_be_made_private_is_refused_before_writing(monkeypatch, tmp_path):
    root = tmp_path / "shared-archive"
    root.mkdir(mode=0o755)
    root.chmod(0o755)

    def not_the_owner(path: Any, mode: int, **_: Any) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    store = open_archive(str(root))
    monkeypatch.setattr(os, "chmod", not_the_owner)
    with pytest.raises(ArchiveLocationError, match="cannot be made private") as refused:
        store.replace_json("pending/x.json", {"users": []})
    assert str(root) in str(refused.value) and "0755" in str(refused.value)
    assert list(root.iterdir()) == []


def test_every_object_of_an_archive_on_s3_is_encrypted_at_rest(aws, monkeypatch):
    clients, base = aws
    clients.s3.create_bucket(Bucket=ARCHIVE_BUCKET)
    settings = dataclasses.replace(base, archive_location=f"s3://{ARCHIVE_BUCKET}/archive")
    as_of = now_ms()
    seed(clients, settings, as_of)
    run_cascade(clients, settings, as_of, ["u1"])

    def die(**_: Any) -> None:
        raise Killed

    clients.dynamodb.meta.events.register("after-call.dynamodb.PutItem", die)
    with pytest.raises(Killed):
        restore(clients, settings, "u1")
    clients.dynamodb.meta.events.unregister("after-call.dynamodb.PutItem", die)

    listed = clients.s3.list_objects_v2(Bucket=ARCHIVE_BUCKET, Prefix="archive/")["Contents"]
    for obj in listed:
        head = clients.s3.head_object(Bucket=ARCHIVE_BUCKET, Key=obj["Key"])
        assert head.get("ServerSideEncryption") == "AES256", obj["Key"]
    assert {o["Key"].split("/")[1] + "/" for o in listed} == {MANIFESTS, LEDGER, RESTORING}
    assert restore(clients, settings, "u1")["status"] == "restored"


def test_a_reader_pointed_at_a_missing_archive_is_told_which(aws, tmp_path):
    clients, _ = aws
    missing = tmp_path / "archvie"
    with pytest.raises(ArchiveLocationError, match=str(missing)):
        open_archive(str(missing), existing=True)
    assert open_archive(str(missing)).keys(LEDGER) == []  # a run: created at its first write
    assert not missing.exists()
    store = open_archive("s3://no-such-bucket/archive", clients.s3, existing=True)
    with pytest.raises(ArchiveLocationError, match="'no-such-bucket' does not exist"):
        store.keys(LEDGER)
