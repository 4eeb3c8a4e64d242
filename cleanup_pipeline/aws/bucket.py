"""The public bucket, versioned: list a user's folder with every version and delete marker,
delete objects or versions in batches shared across users, check versioning is on."""

from typing import Any

from cleanup_pipeline.core.object_versions import ObjectVersion

S3_DELETE_LIMIT = 1000


class VersioningNotEnabledError(RuntimeError):
    """A restore window needs the public bucket's versioning to keep deleted files."""

    def __init__(self, bucket: str, status: str | None) -> None:
        super().__init__(
            f"RESTORE_WINDOW_DAYS > 0 keeps deleted files as versions of the public bucket, but "
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


def delete_versions(client: Any, bucket: str, targets: list[tuple[str, str]]) -> dict[str, str]:
    """Delete these (key, version id) pairs for good, 1,000 per request; {key: error} refused."""
    return delete_targets(client, bucket, list(targets))


def delete_targets(
    client: Any, bucket: str, targets: list[tuple[str, str | None]]
) -> dict[str, str]:
    """Delete objects, 1,000 per request: a (key, version id) pair removes that version for good,
    a (key, None) pair the current object (a delete marker, on a versioned bucket). Returns
    {key: error} for what S3 refused."""
    failed: dict[str, str] = {}
    for start in range(0, len(targets), S3_DELETE_LIMIT):
        objects = [
            {"Key": key} if version is None else {"Key": key, "VersionId": version}
            for key, version in targets[start : start + S3_DELETE_LIMIT]
        ]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        for error in response.get("Errors", []):
            failed[error["Key"]] = f"{error.get('Code')}: {error.get('Message')}"
    return failed
