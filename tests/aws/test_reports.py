"""Per-run reports written as Parquet to a local folder or to S3 and read back; report files
past the retention are removed, locally and on S3, and nothing else is."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cleanup_pipeline.actions.outcomes import DELETED, FAILED, Outcomes, empty_outcomes
from cleanup_pipeline.aws.reports import (
    DELETE_BATCH,
    StoredReport,
    expired_reports,
    remove_reports,
    report_location,
    report_name,
    stored_reports,
    summary_location,
    write_report,
    write_summary,
)
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.definitions import defs
from tests.support.report_files import NOW, sample_report, touch

REPORTS = [
    "2026-01-01_3f2a9c1e-0d4b-4c7e-9a51-6b1f0e2d7c88.parquet",
    "2026-01-01_3f2a9c1e-0d4b-4c7e-9a51-6b1f0e2d7c88.summary.md",
    "2026-01-02_run-2.parquet.partial",
    "2026-01-02_run-2.csv",
]
OTHERS = [
    "notes.txt",
    "2026-01-01_run-3.tsv",
    "2026-01-01_run-3.csv.bak",
    "2026-01-01_run-3.parquet.bak",
    "keep-2026-01-01_run-3.parquet",
    "2026-1-1_run-3.parquet",
]


def test_local_lists_only_report_files_directly_in_the_folder(tmp_path):
    for name in REPORTS + OTHERS:
        touch(tmp_path / name, 100)
    touch(tmp_path / "archive" / REPORTS[0], 100)
    found = stored_reports(str(tmp_path))
    assert sorted(report_name(r) for r in found) == sorted(REPORTS)
    assert all(abs(r.modified - (NOW - timedelta(days=100))) < timedelta(seconds=1) for r in found)
    assert stored_reports(str(tmp_path / "missing")) == []


def test_local_removes_only_expired_reports_and_never_this_runs(tmp_path):
    touch(tmp_path / "2026-01-01_old.parquet", 91)
    touch(tmp_path / "2026-01-01_old.summary.md", 91)
    touch(tmp_path / "2026-03-01_recent.parquet", 89)
    touch(tmp_path / "2025-01-01_this-run.parquet", 400)  # a replay of an old as_of, by this run
    touch(tmp_path / "notes.txt", 400)
    cutoff = NOW - timedelta(days=90)

    expired = expired_reports(stored_reports(str(tmp_path)), cutoff, keep_run_id="this-run")
    assert sorted(report_name(r) for r in expired) == [
        "2026-01-01_old.parquet",
        "2026-01-01_old.summary.md",
    ]
    remove_reports(expired)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2025-01-01_this-run.parquet",
        "2026-03-01_recent.parquet",
        "notes.txt",
    ]
    remove_reports(expired)  # already gone: nothing to do, no error


def test_keep_run_id_matches_the_whole_run_id_only():
    reports = [
        StoredReport("/r/2026-01-01_run-1.parquet", NOW - timedelta(days=400)),
        StoredReport("/r/2026-01-01_run-10.parquet", NOW - timedelta(days=400)),
    ]
    expired = expired_reports(reports, NOW, keep_run_id="run-1")
    assert [report_name(r) for r in expired] == ["2026-01-01_run-10.parquet"]


def record_deletes(s3: Any) -> list[int]:
    sizes: list[int] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "DeleteObjects":
            sizes.append(len(params["Delete"]["Objects"]))

    s3.meta.events.register("provide-client-params.s3.DeleteObjects", hook)
    return sizes


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.mark.parametrize("base", ["s3://ops-reports/cleanup", "s3://ops-reports/cleanup/"])
def test_s3_removes_only_report_files_under_the_prefix_in_batches(aws, base):
    clients, _ = aws
    s3 = clients.s3
    s3.create_bucket(Bucket="ops-reports")
    reports = [f"cleanup/2026-01-{day:02d}_run-{day}.parquet" for day in range(1, 8)]
    others = [
        "cleanup/archive/2026-01-01_run-1.parquet",  # a "subfolder": not listed
        "cleanup-old/2026-01-01_run-1.parquet",  # a neighbouring prefix
        "2026-01-01_run-1.parquet",  # the bucket's root
        *(f"cleanup/{name}" for name in OTHERS),
    ]
    for key in reports + others:
        s3.put_object(Bucket="ops-reports", Key=key, Body=b"x")
    sizes = record_deletes(s3)

    found = stored_reports(base, s3)
    assert sorted(r.location for r in found) == [f"s3://ops-reports/{k}" for k in reports]
    assert all(NOW - timedelta(minutes=5) < r.modified <= datetime.now(UTC) for r in found)
    # Written just now: nothing is older than a cutoff in the past.
    assert expired_reports(found, NOW - timedelta(days=1), keep_run_id="run-0") == []

    # A cutoff after their LastModified makes them all old; run-7 is this run's and stays.
    expired = expired_reports(found, datetime.now(UTC) + timedelta(days=1), keep_run_id="run-7")
    remove_reports(expired, s3, batch=3)

    assert sizes == [3, 3]
    assert keys(s3, "ops-reports") == sorted([*others, "cleanup/2026-01-07_run-7.parquet"])


def test_s3_root_of_a_bucket_and_default_batch(aws):
    clients, _ = aws
    s3 = clients.s3
    s3.create_bucket(Bucket="ops-reports")
    s3.put_object(Bucket="ops-reports", Key="2026-01-01_run-1.summary.md", Body=b"x")
    s3.put_object(Bucket="ops-reports", Key="sub/2026-01-01_run-1.parquet", Body=b"x")
    sizes = record_deletes(s3)
    found = stored_reports("s3://ops-reports", s3)
    assert [report_name(r) for r in found] == ["2026-01-01_run-1.summary.md"]
    remove_reports(found, s3)
    assert sizes == [1]
    assert keys(s3, "ops-reports") == ["sub/2026-01-01_run-1.parquet"]
    assert DELETE_BATCH == 1000  # the most one DeleteObjects request takes


def test_s3_needs_a_client():
    with pytest.raises(ValueError):
        stored_reports("s3://ops-reports/cleanup")
    with pytest.raises(ValueError):
        remove_reports([StoredReport("s3://ops-reports/2026-01-01_r.parquet", NOW)])


def assert_same(read: pd.DataFrame, written: pd.DataFrame) -> None:
    assert list(read.columns) == list(written.columns)
    assert len(read) == len(written)
    for column in written.columns:
        expected = written[column].astype(object).where(written[column].notna(), None)
        actual = read[column].astype(object).where(read[column].notna(), None)
        assert actual.tolist() == expected.tolist(), column
    assert read["lastVisitAt"].dtype == "Int64"


def test_local_report(tmp_path):
    location = report_location(str(tmp_path / "reports"), "2026-03-04T05:06:07+00:00", "run-1")
    assert location == str((tmp_path / "reports" / "2026-03-04_run-1.parquet").resolve())

    written = write_report(sample_report(), location)

    assert written == location
    assert [p.name for p in Path(location).parent.iterdir()] == ["2026-03-04_run-1.parquet"]
    assert_same(pd.read_parquet(written), sample_report())


def test_local_report_replaces_an_earlier_one(tmp_path):
    location = report_location(str(tmp_path), "2026-03-04T00:00:00Z", "run-1")
    write_report(sample_report().head(1), location)
    write_report(sample_report(), location)
    assert len(pd.read_parquet(location)) == 3


def test_s3_report(aws):
    clients, settings = aws
    base = f"s3://{settings.public_bucket_name}/cleanup-reports/"
    location = report_location(base, "2026-03-04T05:06:07Z", "run-9")
    assert (
        location == f"s3://{settings.public_bucket_name}/cleanup-reports/2026-03-04_run-9.parquet"
    )

    written = write_report(sample_report(), location, s3=clients.s3)

    assert written == location
    body = clients.s3.get_object(
        Bucket=settings.public_bucket_name, Key="cleanup-reports/2026-03-04_run-9.parquet"
    )["Body"].read()
    assert_same(pd.read_parquet(io.BytesIO(body)), sample_report())


def test_s3_report_needs_a_client():
    with pytest.raises(ValueError):
        write_report(sample_report(), "s3://bucket/report.parquet")


def test_outcomes_frame_round_trips_and_hides_addresses(tmp_path):
    outcomes = Outcomes(Decision.DELETE)
    outcomes.add("u1", DELETED)
    outcomes.add("u2", FAILED, "files", "AccessDenied for jane.doe@example.com on u2/a")
    frame = outcomes.frame()

    assert frame["error"].tolist()[1] == "AccessDenied for j***@example.com on u2/a"
    assert outcomes.count(FAILED) == 1
    assert all(str(dtype) == "string" for dtype in frame.dtypes)
    assert empty_outcomes(Decision.NOTIFY).columns.tolist() == frame.columns.tolist()

    path = write_report(frame, str(tmp_path / "outcomes.parquet"))
    assert pd.read_parquet(path)["error"].tolist() == frame["error"].tolist()


def test_summary_sits_next_to_the_report_locally(tmp_path):
    location = report_location(str(tmp_path), "2026-03-04T00:00:00Z", "run-1")
    summary = summary_location(location)
    assert summary == str((tmp_path / "2026-03-04_run-1.summary.md").resolve())
    assert write_summary("# first\n", summary) == summary
    assert write_summary("# second ✓\n", summary) == summary
    assert Path(summary).read_text(encoding="utf-8") == "# second ✓\n"
    assert [p.name for p in tmp_path.iterdir()] == ["2026-03-04_run-1.summary.md"]


def test_summary_on_s3(aws):
    clients, settings = aws
    location = report_location(f"s3://{settings.public_bucket_name}/ops", "2026-03-04Z", "r-2")
    summary = summary_location(location)
    assert summary == f"s3://{settings.public_bucket_name}/ops/2026-03-04_r-2.summary.md"
    write_summary("# report ✓\n", summary, s3=clients.s3)
    answer = clients.s3.get_object(
        Bucket=settings.public_bucket_name, Key="ops/2026-03-04_r-2.summary.md"
    )
    assert answer["Body"].read().decode("utf-8") == "# report ✓\n"
    assert answer["ContentType"].startswith("text/markdown")
    with pytest.raises(ValueError):
        write_summary("x", summary)


def test_the_reports_s3_resource_follows_aws_endpoint_url(server):
    """The definitions' `reports_s3` finds the emulator through boto3's own variables, as the
    job's other clients do; nothing in the resource's config names an endpoint."""
    resource = defs.resources["reports_s3"]
    assert resource.endpoint_url is None
    s3 = resource.get_client()
    assert s3.meta.endpoint_url == server
    s3.create_bucket(Bucket="ops-reports")
    location = report_location("s3://ops-reports/cleanup", "2026-03-04Z", "r-3")
    write_report(sample_report(), location, s3)
    write_summary("# r-3\n", summary_location(location), s3)
    listed = s3.list_objects_v2(Bucket="ops-reports", Prefix="cleanup/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "cleanup/2026-03-04_r-3.parquet",
        "cleanup/2026-03-04_r-3.summary.md",
    ]
