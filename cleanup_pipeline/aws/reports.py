"""Where report files go: a local folder (default) or an S3 prefix (`s3://bucket/prefix`).

Each run writes `<as_of date>_<run_id>.parquet` and, next to it, `<same>.csv` (the same rows,
for anyone without a Parquet reader) and `<same>.summary.md`.

Reports older than the retention are found and removed in the reports folder or under the
reports S3 prefix. Only files named like a report, its CSV copy or its summary, directly inside
that folder or prefix, are ever listed, so nothing else stored there can be removed. Age is the
file's last modification (S3 `LastModified`, local mtime), not the date in its name: a run with
an `as_of` in the past (a replay) writes a report named for that day, which must not be removed
the moment it is written, and a run with an `as_of` in the future must not sweep every report
away. S3 lifecycle rules age objects the same way.
"""

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd

REPORT_SUFFIX, SUMMARY_SUFFIX, CSV_SUFFIX = ".parquet", ".summary.md", ".csv"
PRESIGNED_SECONDS = 7 * 24 * 3600


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def split_s3(location: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    return bucket, key


def report_location(base: str, as_of_iso: str, run_id: str) -> str:
    name = f"{as_of_iso[:10]}_{run_id}{REPORT_SUFFIX}"
    if is_s3(base):
        return f"{base.rstrip('/')}/{name}"
    return str(Path(base).resolve() / name)


def summary_location(report: str) -> str:
    """The summary's location, next to the report at `report`."""
    return report.removesuffix(REPORT_SUFFIX) + SUMMARY_SUFFIX


def csv_location(report: str) -> str:
    """The CSV copy's location, next to the report at `report`."""
    return report.removesuffix(REPORT_SUFFIX) + CSV_SUFFIX


def browser_link(location: str, s3: Any) -> str:
    """An address a browser opens for the S3 object at `location`. On AWS: the object's page in
    the S3 console (reports are private, so a plain object URL would be refused, and a console
    link never expires). On any other endpoint (a local emulator, which has no console): a
    presigned download link, valid for SigV4's longest week."""
    bucket, key = split_s3(location)
    if (urlsplit(s3.meta.endpoint_url).hostname or "").endswith(".amazonaws.com"):
        region = s3.meta.region_name
        return (
            f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}"
            f"?region={region}&prefix={quote(key, safe='')}"
        )
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_SECONDS
    )


def _put(data: bytes, location: str, content_type: str, s3: Any | None) -> str:
    if is_s3(location):
        if s3 is None:
            raise ValueError("an S3 client is needed to write reports to S3")
        bucket, key = split_s3(location)
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return location
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)  # readers never see a half-written file
    return str(path)


def write_report(frame: pd.DataFrame, location: str, s3: Any | None = None) -> str:
    """Write the report as Parquet; returns the path or S3 URI written."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return _put(buffer.getvalue(), location, "application/vnd.apache.parquet", s3)


def write_summary(text: str, location: str, s3: Any | None = None) -> str:
    """Write the human-readable summary (Markdown); returns the path or S3 URI written."""
    return _put(text.encode("utf-8"), location, "text/markdown; charset=utf-8", s3)


def write_csv(frame: pd.DataFrame, location: str, s3: Any | None = None) -> str:
    """Write the report's rows as UTF-8 CSV; returns the path or S3 URI written."""
    data = frame.to_csv(index=False).encode("utf-8")
    return _put(data, location, "text/csv; charset=utf-8", s3)


def read_report(location: str, s3: Any | None = None) -> pd.DataFrame:
    """Read a report written by `write_report` (a local path or an S3 URI)."""
    if not is_s3(location):
        return pd.read_parquet(location)
    if s3 is None:
        raise ValueError("an S3 client is needed to read reports from S3")
    bucket, key = split_s3(location)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


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
