"""The report's CSV copy, written next to the Parquet file, removed with it by retention, and
links to reports on S3 that a browser opens."""

import io
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pandas as pd
import requests

from cleanup_pipeline.aws.reports import (
    browser_link,
    csv_location,
    expired_reports,
    remove_reports,
    report_location,
    stored_reports,
    write_csv,
)
from tests.support.report_files import NOW, sample_report, touch


def test_the_csv_sits_next_to_the_report_with_the_same_rows(tmp_path: Path) -> None:
    report = report_location(str(tmp_path), "2026-03-04T00:00:00Z", "run-1")
    location = csv_location(report)
    assert location == str((tmp_path / "2026-03-04_run-1.csv").resolve())

    assert write_csv(sample_report(), location) == location

    read = pd.read_csv(location, dtype=str, keep_default_na=False)
    assert read.columns.tolist() == sample_report().columns.tolist()
    assert read["id"].tolist() == ["u1", "u2", "u3"]
    assert read["email_masked"].tolist() == ["j***@example.com", "", "a***@b.c"]
    assert read["lastVisitAt"].tolist() == ["1700000000000", "", "5"]
    assert [p.name for p in tmp_path.iterdir()] == ["2026-03-04_run-1.csv"]


def test_the_csv_on_s3_is_typed_for_a_browser(aws) -> None:
    clients, settings = aws
    report = report_location(f"s3://{settings.public_bucket_name}/ops", "2026-03-04Z", "r-2")
    location = csv_location(report)
    assert location == f"s3://{settings.public_bucket_name}/ops/2026-03-04_r-2.csv"
    write_csv(sample_report(), location, s3=clients.s3)

    answer = clients.s3.get_object(Bucket=settings.public_bucket_name, Key="ops/2026-03-04_r-2.csv")
    assert answer["ContentType"] == "text/csv; charset=utf-8"
    read = pd.read_csv(io.BytesIO(answer["Body"].read()))
    assert read["decision"].tolist() == ["delete", "notify", "invalid"]


def test_an_s3_report_on_aws_links_to_its_page_in_the_console(aws) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.meta.endpoint_url.endswith(".amazonaws.com")
    link = browser_link("s3://ops-reports/cleanup/2026-03-04_r 1.csv", s3)
    assert link == (
        "https://s3.console.aws.amazon.com/s3/object/ops-reports"
        "?region=eu-west-1&prefix=cleanup%2F2026-03-04_r%201.csv"
    )


def test_an_s3_report_on_an_emulator_links_to_a_download_a_browser_opens(server: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="ops-reports")
    location = "s3://ops-reports/cleanup/2026-03-04_r-3.csv"
    write_csv(sample_report(), location, s3)
    assert requests.get(f"{server}/ops-reports/cleanup/2026-03-04_r-3.csv").status_code == 403

    link = browser_link(location, s3)

    assert link.startswith(f"{server}/ops-reports/cleanup/2026-03-04_r-3.csv?")
    [expires] = parse_qs(urlsplit(link).query)["Expires"]
    assert abs(int(expires) - (time.time() + 7 * 24 * 3600)) < 60  # valid for a week
    opened = requests.get(link, timeout=10)  # what a browser does with the link
    assert opened.status_code == 200
    assert opened.headers["Content-Type"].startswith("text/csv")
    assert opened.text.splitlines()[0] == ",".join(sample_report().columns)


def test_retention_removes_the_csv_with_its_report(tmp_path: Path) -> None:
    for name in ("2026-01-01_old.parquet", "2026-01-01_old.csv", "2026-01-01_old.summary.md"):
        touch(tmp_path / name, 91)
    touch(tmp_path / "2026-05-01_new.csv", 10)
    touch(tmp_path / "2026-01-01_old.csv.bak", 91)
    expired = expired_reports(stored_reports(str(tmp_path)), NOW - timedelta(days=90), "this")
    remove_reports(expired)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-01-01_old.csv.bak",
        "2026-05-01_new.csv",
    ]
