"""Where report files go: a local folder (default) or an S3 prefix (`s3://bucket/prefix`).

Each run writes `<as_of date>_<run_id>.parquet` and, next to it, `<same>.csv` (the same rows,
for anyone without a Parquet reader) and `<same>.summary.md`.
"""

import io
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
