"""The public bucket: list a user's folder, delete objects in batches shared across users."""

from typing import Any

S3_DELETE_LIMIT = 1000


def list_folder(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under `prefix`, all pages; the trailing '/' keeps `u1/` from matching `u10/`."""
    if not prefix.endswith("/"):
        raise ValueError(f"folder prefix must end with '/': {prefix!r}")
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def delete_keys(client: Any, bucket: str, keys: list[str]) -> dict[str, str]:
    """Delete `keys` in requests of at most 1,000; returns {key: error} for keys S3 refused."""
    failed: dict[str, str] = {}
    for start in range(0, len(keys), S3_DELETE_LIMIT):
        chunk = keys[start : start + S3_DELETE_LIMIT]
        response = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
        )
        for error in response.get("Errors", []):
            failed[error["Key"]] = f"{error.get('Code')}: {error.get('Message')}"
    return failed
