"""The public bucket, versioned: list a user's folder with every version and delete marker,
hide objects under delete markers or delete versions in batches shared across users, check
versioning is on, and tell whether anything is left in a folder; for an access export, list a
folder's current objects, read each as a stream, and upload the export encrypted."""

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.s3.transfer import TransferConfig

from cleanup_pipeline.core.recovery import ObjectVersion

S3_DELETE_LIMIT = 1000
# The most one PutObject takes (5 GiB).
MAX_SINGLE_UPLOAD = 5 * 1024**3


class VersioningNotEnabledError(RuntimeError):
    """A restore window needs the versioning of each bucket files are deleted from (the public
    bucket, and any other of the data map) to keep them."""

    def __init__(self, bucket: str, status: str | None) -> None:
        super().__init__(
            f"RESTORE_WINDOW_DAYS > 0 keeps deleted files as versions of their bucket, but "
            f"versioning of bucket {bucket!r} is {status or 'not enabled'}. Enable it with "
            f"`aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration "
            f"Status=Enabled`, or set RESTORE_WINDOW_DAYS=0 to delete files at once for good."
        )


def require_versioning(client: Any, bucket: str) -> None:
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise VersioningNotEnabledError(bucket, status)


def list_versions(client: Any, bucket: str, prefix: str) -> list[ObjectVersion]:
    """Every version and delete marker under `prefix` (all pages), newest first per key."""
    if not prefix.endswith("/"):
        raise ValueError(f"folder prefix must end with '/': {prefix!r}")
    found: list[ObjectVersion] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for kind, is_marker in (("Versions", False), ("DeleteMarkers", True)):
            found.extend(
                ObjectVersion(
                    v["Key"],
                    v["VersionId"],
                    bool(v.get("IsLatest")),
                    is_marker,
                    v["LastModified"].timestamp(),
                )
                for v in page.get(kind, [])
            )
    return found


def folder_holds(client: Any, bucket: str, prefix: str, *, any_version: bool) -> bool:
    """Whether anything is left under `prefix`: any version or delete marker (`any_version`),
    or else any current object. One listing of the folder's versions, read page by page only
    until something is found (a folder whose files are all under markers lists two entries a
    file)."""
    if not prefix.endswith("/"):
        raise ValueError(f"folder prefix must end with '/': {prefix!r}")
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        if any_version and (page.get("Versions") or page.get("DeleteMarkers")):
            return True
        if any(v.get("IsLatest") for v in page.get("Versions", [])):
            return True
    return False


def delete_versions(client: Any, bucket: str, targets: list[tuple[str, str]]) -> dict[str, str]:
    """Delete these (key, version id) pairs for good, 1,000 per request; {key: error} refused."""
    return delete_targets(client, bucket, list(targets))


def _delete_requests(
    client: Any, bucket: str, targets: list[tuple[str, str | None]], quiet: bool
) -> Iterator[dict[str, Any]]:
    """DeleteObjects in requests of 1,000: a (key, version id) pair removes that version for
    good, a (key, None) pair the current object (a delete marker, on a versioned bucket)."""
    for start in range(0, len(targets), S3_DELETE_LIMIT):
        objects = [
            {"Key": key} if version is None else {"Key": key, "VersionId": version}
            for key, version in targets[start : start + S3_DELETE_LIMIT]
        ]
        yield client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": quiet})


def _refusals(response: dict[str, Any]) -> dict[str, str]:
    return {e["Key"]: f"{e.get('Code')}: {e.get('Message')}" for e in response.get("Errors", [])}


def delete_targets(
    client: Any, bucket: str, targets: list[tuple[str, str | None]]
) -> dict[str, str]:
    """Delete objects or versions (see `_delete_requests`); returns {key: error} for what S3
    refused."""
    failed: dict[str, str] = {}
    for response in _delete_requests(client, bucket, targets, quiet=True):
        failed.update(_refusals(response))
    return failed


@dataclass
class Hidden:
    """What hiding current objects did. `markers` maps each key hidden to the version id of the
    delete marker made over it, None where the bucket keeps no versions and the object is gone
    for good. A request sent more than once (`retried`) may have made markers its answer does
    not name."""

    markers: dict[str, str | None] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    retried: set[str] = field(default_factory=set)


def hide_objects(client: Any, bucket: str, keys: list[str]) -> Hidden:
    """Delete the current objects at `keys` without naming a version, 1,000 per request: on a
    versioned bucket each gets a delete marker and its versions stay, so the deletion can still
    be undone."""
    hidden = Hidden()
    for start, response in zip(
        range(0, len(keys), S3_DELETE_LIMIT),
        _delete_requests(client, bucket, [(key, None) for key in keys], quiet=False),
        strict=True,
    ):
        hidden.refused.update(_refusals(response))
        for done in response.get("Deleted", []):
            marker = done.get("DeleteMarkerVersionId") if done.get("DeleteMarker") else None
            hidden.markers[done["Key"]] = marker
        if response.get("ResponseMetadata", {}).get("RetryAttempts", 0):
            hidden.retried.update(keys[start : start + S3_DELETE_LIMIT])
    return hidden


def remove_folders(client: Any, bucket: str, prefixes: list[str]) -> dict[str, str]:
    """Every version and delete marker under each folder, found by listing the folder's versions
    and removed in requests of 1,000 shared across folders; {prefix: error} for the folders not
    emptied."""
    failed: dict[str, str] = {}
    owner: dict[str, str] = {}
    targets: list[tuple[str, str | None]] = []
    for prefix in prefixes:
        try:
            found = list_versions(client, bucket, prefix)
        except Exception as error:
            failed[prefix] = f"{type(error).__name__}: {error}"
            continue
        for version in found:
            owner[version.key] = prefix
            targets.append((version.key, version.version_id))
    try:
        refused = delete_targets(client, bucket, targets)
    except Exception as error:
        return {**failed, **dict.fromkeys(set(owner.values()), f"{type(error).__name__}: {error}")}
    for key, why in refused.items():
        failed.setdefault(owner[key], f"{key}: {why}")
    return failed


def current_objects_under(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Each current object under `prefix` (ListObjectsV2, page by page: no older version, no
    delete marker): its key, size in bytes, last modification (ISO 8601) and ETag."""
    if not prefix.endswith("/"):
        raise ValueError(f"folder prefix must end with '/': {prefix!r}")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for found in page.get("Contents", []):
            yield {
                "key": found["Key"],
                "size": int(found.get("Size", 0)),
                "last_modified": found["LastModified"].isoformat(),
                "etag": str(found.get("ETag", "")).strip('"'),
            }


def open_object(client: Any, bucket: str, key: str) -> Any | None:
    """The current object's body as a stream (read it in chunks, then close it); None when the
    object is gone."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"]
    except client.exceptions.NoSuchKey:
        return None


def upload_encrypted(client: Any, path: str, bucket: str, key: str) -> None:
    """Upload a local file in one PutObject with server-side encryption (SSE-S3), read from the
    file as it is sent. Never in parts: a part carries no encryption header, so the policy's
    condition on it could not hold."""
    size = os.path.getsize(path)
    if size > MAX_SINGLE_UPLOAD:
        raise ValueError(
            f"the export is {size:,} bytes, more than one upload to S3 takes "
            f"({MAX_SINGLE_UPLOAD:,}): export to a local folder instead"
        )
    config = TransferConfig(multipart_threshold=MAX_SINGLE_UPLOAD + 1)
    client.upload_file(
        path, bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"}, Config=config
    )
