"""Versions of objects in a versioned bucket, and which delete markers hide a given version."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    is_marker: bool
    last_modified: float


def by_key(versions: list[ObjectVersion]) -> dict[str, list[ObjectVersion]]:
    """Versions grouped by key, newest first (S3 lists each kind newest first; a delete marker
    made in the same second as the version it hides sorts above it)."""
    grouped: dict[str, list[ObjectVersion]] = {}
    for version in versions:
        grouped.setdefault(version.key, []).append(version)
    for found in grouped.values():
        found.sort(key=lambda v: (v.is_latest, v.last_modified, v.is_marker), reverse=True)
    return grouped


def current_objects(versions: list[ObjectVersion]) -> list[ObjectVersion]:
    """The objects that exist now: keys whose latest version is not a delete marker."""
    return [v for v in versions if v.is_latest and not v.is_marker]
