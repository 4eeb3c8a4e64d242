"""The private archive (`CLEANUP_ARCHIVE_DIR`): a local folder or an S3 prefix.

Two kinds of write: `replace` (manifests, journals: durable before the call returns, readers
never see half a file) and `create` (ledger events: written only if absent, so each event exists
exactly once whoever writes it and however often).

The archive holds addresses and names in clear. Locally every file it holds is mode 0600 and
every folder 0700, whatever the umask; an existing archive left open to other users (by hand, or
by an older version) is tightened, file by file, on the first write. On S3 every object is
written with server-side encryption (SSE-S3), which the IAM policy requires.

Only a run creates the archive. Reading one that is not there (a misspelled folder, a bucket
that does not exist) is an error naming it, never an empty answer: an empty ledger would read
as "never deleted".
"""

import contextlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.aws.reports import is_s3, split_s3

FILE_MODE, FOLDER_MODE = 0o600, 0o700
ENCRYPTION = {"ServerSideEncryption": "AES256"}


class ArchiveLocationError(ValueError):
    """`CLEANUP_ARCHIVE_DIR` cannot be used: it does not exist, or cannot be made private."""


class ArchiveStore(ABC):
    """Keys are relative to the archive's root, `/`-separated."""

    location: str

    @abstractmethod
    def replace(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Write `key` only if it does not exist; False when it already did."""

    @abstractmethod
    def read(self, key: str) -> bytes | None: ...

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    def read_json(self, key: str) -> Any:
        data = self.read(key)
        return None if data is None else json.loads(data)

    def replace_json(self, key: str, value: Any) -> None:
        self.replace(key, json.dumps(value, sort_keys=True).encode())

    def create_json(self, key: str, value: Any) -> bool:
        return self.create(key, json.dumps(value, sort_keys=True).encode())


def _chmod(path: str, mode: int) -> None:
    """Set `path`'s mode, unless it is a symbolic link or went away meanwhile (a partial file
    another writer renamed)."""
    with contextlib.suppress(FileNotFoundError):
        if not os.path.islink(path):
            os.chmod(path, mode)


class LocalArchive(ArchiveStore):
    def __init__(self, root: str, existing: bool = False) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)
        self._private = False  # checked (and tightened) at this instance's first write
        if existing and not self.root.is_dir():
            raise ArchiveLocationError(
                f"CLEANUP_ARCHIVE_DIR {self.location} does not exist: check the variable "
                "(only a run creates the archive; a missing one was never written to)"
            )

    def _path(self, key: str) -> Path:
        return self.root / key

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _make_private(self) -> None:
        """An existing archive whose root, or a folder or file right under it, is open to group
        or others: every folder 0700, every file 0600. (Once the root is 0700, nothing under it
        is reachable by anyone else, so a later run checks only these few.)"""
        entries = (self.root, *self.root.iterdir())
        looser = [p for p in entries if not p.is_symlink() and p.lstat().st_mode & 0o077]
        if not looser:
            return
        try:
            for folder, _, files in os.walk(self.root):
                _chmod(folder, FOLDER_MODE)
                for name in files:
                    _chmod(os.path.join(folder, name), FILE_MODE)
        except PermissionError as error:
            mode = looser[0].lstat().st_mode & 0o777
            raise ArchiveLocationError(
                f"CLEANUP_ARCHIVE_DIR {self.location} is open to other users ({looser[0].name} "
                f"has mode {mode:04o}) and cannot be made private ({error.strerror}: "
                f"{error.filename}); make the job's user its owner, or choose another folder"
            ) from None

    def _folder(self, folder: Path) -> None:
        """`folder` and every missing folder above it created with mode 0700."""
        if not self._private:
            if self.root.is_dir():
                self._make_private()
            self._private = True
        missing = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, FOLDER_MODE)
            os.chmod(path, FOLDER_MODE)  # the umask may have taken bits off

    @staticmethod
    def _write(path: Path, data: bytes, exclusive: bool) -> bool:
        """Write `path` with mode 0600, durably; False when `exclusive` and it exists."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        try:
            descriptor = os.open(path, flags, FILE_MODE)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(descriptor, FILE_MODE)  # the umask may have taken bits off
            handle.write(data)
            handle.flush()
            os.fsync(descriptor)
        return True

    def replace(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._folder(path.parent)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._write(partial, data, exclusive=False)
        partial.replace(path)
        self._sync_dir(path.parent)  # the rename itself survives a power cut

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        self._folder(path.parent)
        if not self._write(path, data, exclusive=True):
            return False
        self._sync_dir(path.parent)
        return True

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix.endswith("/") else self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.endswith(".partial")
        )

    def remove(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        folder = self._path(key).parent
        if folder != self.root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


class S3Archive(ArchiveStore):
    def __init__(self, location: str, client: Any) -> None:
        self.bucket, prefix = split_s3(location)
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.location, self.client = location, client

    @contextlib.contextmanager
    def _bucket_named(self) -> Iterator[None]:
        """A bucket that does not exist named as the archive's, not as a bare ClientError."""
        try:
            yield
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise
            raise ArchiveLocationError(
                f"CLEANUP_ARCHIVE_DIR {self.location}: the bucket {self.bucket!r} does not "
                "exist; check the variable"
            ) from None

    def replace(self, key: str, data: bytes) -> None:
        with self._bucket_named():
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, **ENCRYPTION
            )

    def create(self, key: str, data: bytes) -> bool:
        try:
            with self._bucket_named():
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.prefix + key,
                    Body=data,
                    IfNoneMatch="*",
                    **ENCRYPTION,
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def read(self, key: str) -> bytes | None:
        try:
            with self._bucket_named():
                got = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
                return got["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with self._bucket_named():
            found = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return sorted(key.removeprefix(self.prefix) for key in found)

    def remove(self, key: str) -> None:
        with self._bucket_named():
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def open_archive(location: str, s3: Any | None = None, existing: bool = False) -> ArchiveStore:
    """The archive at `location`; an S3 location needs a client. With `existing` (a reader:
    restore, ledger), a local folder that does not exist is an error at once; a missing bucket
    is one at the first call, whatever `existing`."""
    if is_s3(location):
        if s3 is None:
            raise ValueError("an S3 client is needed for an archive on S3")
        return S3Archive(location, s3)
    return LocalArchive(location, existing)
