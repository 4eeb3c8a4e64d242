"""The private archive (`CLEANUP_ARCHIVE_DIR`): a local folder or an S3 prefix.

Two kinds of write: `replace` (manifests, journals: durable before the call returns, readers
never see half a file) and `create` (ledger events: written only if absent, so each event exists
exactly once whoever writes it and however often).
"""

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.aws.report_store import is_s3, split_s3


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


class LocalArchive(ArchiveStore):
    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def replace(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
        self._sync_dir(path.parent)  # the rename itself survives a power cut

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
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

    def replace(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def create(self, key: str, data: bytes) -> bool:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        found = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return sorted(key.removeprefix(self.prefix) for key in found)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def open_archive(location: str, s3: Any | None = None) -> ArchiveStore:
    """The archive at `location`; an S3 location needs a client."""
    if is_s3(location):
        if s3 is None:
            raise ValueError("an S3 client is needed for an archive on S3")
        return S3Archive(location, s3)
    return LocalArchive(location)
