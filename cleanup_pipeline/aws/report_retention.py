"""Finding and removing report files older than the retention, in the reports folder or under
the reports S3 prefix. Only files named like a report, its CSV copy or its summary, directly
inside that folder or prefix, are ever listed, so nothing else stored there can be removed.

Age is the file's last modification (S3 `LastModified`, local mtime), not the date in its name:
a run with an `as_of` in the past (a replay) writes a report named for that day, which must not
be removed the moment it is written, and a run with an `as_of` in the future must not sweep
every report away. S3 lifecycle rules age objects the same way.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleanup_pipeline.aws.report_store import is_s3, split_s3

# `2026-06-01_<run id>.parquet`, its `.csv` and `.summary.md`, or one left `.partial` by a crash.
REPORT_FILE = re.compile(
    r"\d{4}-\d{2}-\d{2}_[0-9A-Za-z-]+\.(?:parquet|csv|summary\.md)(?:\.partial)?"
)
# DeleteObjects takes at most 1,000 keys per request.
DELETE_BATCH = 1000


@dataclass(frozen=True)
class StoredReport:
    location: str
    modified: datetime


def report_name(report: StoredReport) -> str:
    """The file name of a stored report, wherever it is kept."""
    return report.location.rsplit("/", 1)[-1]


def _prefix(base: str) -> tuple[str, str]:
    bucket, prefix = split_s3(base)
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def stored_reports(base: str, s3: Any | None = None) -> list[StoredReport]:
    """Every report file directly under `base` (a folder or an `s3://bucket/prefix`)."""
    if not is_s3(base):
        folder = Path(base).resolve()
        if not folder.is_dir():
            return []
        return [
            StoredReport(str(path), datetime.fromtimestamp(path.stat().st_mtime, UTC))
            for path in sorted(folder.iterdir())
            if path.is_file() and REPORT_FILE.fullmatch(path.name)
        ]
    if s3 is None:
        raise ValueError("an S3 client is needed to list reports on S3")
    bucket, prefix = _prefix(base)
    found = []
    # The delimiter keeps "subfolders" of the prefix out of the listing.
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            if REPORT_FILE.fullmatch(item["Key"][len(prefix) :]):
                found.append(StoredReport(f"s3://{bucket}/{item['Key']}", item["LastModified"]))
    return found


def expired_reports(
    reports: list[StoredReport], cutoff: datetime, keep_run_id: str
) -> list[StoredReport]:
    """Reports last modified before `cutoff`, never those of the run `keep_run_id`."""
    return [r for r in reports if r.modified < cutoff and f"_{keep_run_id}." not in report_name(r)]


def remove_reports(
    reports: list[StoredReport], s3: Any | None = None, batch: int = DELETE_BATCH
) -> None:
    """Remove the given report files; on S3 in batches, raising if any key was refused."""
    for report in reports:
        if not is_s3(report.location):
            Path(report.location).unlink(missing_ok=True)
    by_bucket: dict[str, list[str]] = {}
    for bucket, key in (split_s3(r.location) for r in reports if is_s3(r.location)):
        by_bucket.setdefault(bucket, []).append(key)
    if by_bucket and s3 is None:
        raise ValueError("an S3 client is needed to remove reports on S3")
    refused: list[str] = []
    for bucket, keys in by_bucket.items():
        for start in range(0, len(keys), batch):
            answer = s3.delete_objects(
                Bucket=bucket,
                Delete={
                    "Objects": [{"Key": k} for k in keys[start : start + batch]],
                    "Quiet": True,
                },
            )
            refused += [f"{e['Key']}: {e.get('Code', '?')}" for e in answer.get("Errors", [])]
    if refused:
        raise RuntimeError(f"{len(refused)} report files were not removed: " + "; ".join(refused))
