"""Per-run reports written as Parquet to a local folder or to S3, and read back."""

import io
from pathlib import Path

import pandas as pd
import pytest

from cleanup_pipeline.actions.outcomes import DELETED, FAILED, Outcomes, empty_outcomes
from cleanup_pipeline.aws.report_store import (
    report_location,
    summary_location,
    write_report,
    write_summary,
)
from cleanup_pipeline.definitions import defs
from tests.support.report_files import sample_report


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
    outcomes = Outcomes("delete")
    outcomes.add("u1", DELETED)
    outcomes.add("u2", FAILED, "files", "AccessDenied for jane.doe@example.com on u2/a")
    frame = outcomes.frame()

    assert frame["error"].tolist()[1] == "AccessDenied for j***@example.com on u2/a"
    assert outcomes.count(FAILED) == 1
    assert all(str(dtype) == "string" for dtype in frame.dtypes)
    assert empty_outcomes("notify").columns.tolist() == frame.columns.tolist()

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
