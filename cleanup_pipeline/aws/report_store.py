"""Where report files go: a local folder (default) or an S3 prefix (`s3://bucket/prefix`)."""

import io
from pathlib import Path
from typing import Any

import pandas as pd


def report_location(base: str, as_of_iso: str, run_id: str) -> str:
    name = f"{as_of_iso[:10]}_{run_id}.parquet"
    if base.startswith("s3://"):
        return f"{base.rstrip('/')}/{name}"
    return str(Path(base).resolve() / name)


def write_report(frame: pd.DataFrame, location: str, s3: Any | None = None) -> str:
    """Write the report as Parquet; returns the path or S3 URI written."""
    if location.startswith("s3://"):
        if s3 is None:
            raise ValueError("an S3 client is needed to write reports to S3")
        bucket, _, key = location.removeprefix("s3://").partition("/")
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return location
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)  # readers never see a half-written report
    return str(path)
